import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';

export type HashAlgorithm = 'sha1' | 'sha256';

/** Digests of a file's bytes, hex, with the number of bytes seen. */
export interface FileDigests {
  size: number;
  sha1?: string;
  sha256?: string;
}

/** Bytes read at a time: memory stays at two chunks whatever the file's size. */
const CHUNK = 1024 * 1024;

/** Bytes written between the flushes of a large copy (copyAndHash's write-behind). */
const WRITE_BEHIND = 32 * 1024 * 1024;

/** A buffer no larger than the file needs (plus one byte to see the end), so small files cost little memory. */
const chunkFor = (fileSize: number) => Math.min(CHUNK, fileSize + 1);

function digestsOf(hashes: Map<HashAlgorithm, Hash>, size: number): FileDigests {
  const out: FileDigests = { size };
  for (const [a, h] of hashes) out[a] = h.digest('hex');
  return out;
}

/** Hashes a file chunk by chunk; never holds more than one chunk in memory. */
export async function hashFile(
  path: string,
  algorithms: readonly HashAlgorithm[] = ['sha1', 'sha256'],
): Promise<FileDigests> {
  const hashes = new Map(algorithms.map((a) => [a, createHash(a)]));
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(chunkFor((await fh.stat()).size));
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      for (const h of hashes.values()) h.update(chunk);
      size += bytesRead;
    }
    return digestsOf(hashes, size);
  } finally {
    await fh.close();
  }
}

/**
 * Copies `from` (a path, or a handle the caller opened and this function closes) to `to`, which
 * must not exist, hashing the bytes as they pass, and fsyncs the copy so that a later rename makes
 * it durable (unless `sync` is false: the caller then fsyncs it itself). Two chunks alternate so that
 * reading the next chunk overlaps writing this one.
 * With `maxBytes`, at most one byte more than that is copied, however the source grows meanwhile:
 * a size above `maxBytes` in the result says the source was larger.
 */
export async function copyAndHash(
  from: string | FileHandle,
  to: string,
  algorithms: readonly HashAlgorithm[] = ['sha1', 'sha256'],
  onProgress?: (bytes: number) => void,
  /** `size`: the source's size if the caller has just read it from the handle (one stat fewer). */
  options: { sync?: boolean; maxBytes?: number; size?: number } = {},
): Promise<FileDigests> {
  const hashes = new Map(algorithms.map((a) => [a, createHash(a)]));
  const src = typeof from === 'string' ? await open(from, 'r') : from;
  let dst: FileHandle | undefined;
  try {
    dst = await open(to, 'wx', 0o644);
    const chunkSize = chunkFor(options.size ?? (await src.stat()).size);
    let current = Buffer.allocUnsafe(chunkSize);
    let next = Buffer.allocUnsafe(chunkSize);
    let size = 0;
    const budget = options.maxBytes === undefined ? Infinity : options.maxBytes + 1;
    const want = () => Math.min(chunkSize, budget - size);
    const sync = options.sync !== false;
    // Write-behind: a large copy is flushed as it goes, in the thread pool while this thread
    // hashes, so the fsync at the end has little left to wait for.
    let flushing: Promise<void> | null = null;
    let flushedAt = 0;
    let n = (await src.read(current, 0, want(), null)).bytesRead;
    while (n > 0) {
      const chunk = current.subarray(0, n);
      for (const h of hashes.values()) h.update(chunk);
      size += n;
      const left = want();
      const [, read] = await Promise.all([
        writeAll(dst, chunk),
        left > 0 ? src.read(next, 0, left, null) : { bytesRead: 0 },
      ]);
      onProgress?.(size);
      if (sync && size - flushedAt >= WRITE_BEHIND && !flushing) {
        flushedAt = size;
        const handle = dst;
        flushing = handle.datasync().finally(() => (flushing = null));
      }
      [current, next] = [next, current];
      n = read.bytesRead;
    }
    await flushing;
    if (sync) await dst.sync();
    return digestsOf(hashes, size);
  } finally {
    // Both handles are closed even if closing the copy reports a late write error (NFS does).
    await Promise.allSettled([dst?.close(), src.close()]).then(([d, s]) => {
      if (d.status === 'rejected') throw d.reason;
      if (s.status === 'rejected') throw s.reason;
    });
  }
}

async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  let done = 0;
  while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
}
