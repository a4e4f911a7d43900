import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type HashAlgorithm = 'sha1' | 'sha256';

/** Digests of a file's bytes, hex, with the number of bytes seen. */
export interface FileDigests {
  size: number;
  sha1?: string;
  sha256?: string;
}

const CHUNK = 1024 * 1024;

/** A pass-through that hashes what flows through it: one read of the data serves every digest. */
class HashingStream extends Transform {
  private readonly hashes: Map<HashAlgorithm, Hash>;
  size = 0;
  constructor(algorithms: readonly HashAlgorithm[]) {
    super();
    this.hashes = new Map(algorithms.map((a) => [a, createHash(a)]));
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void) {
    for (const h of this.hashes.values()) h.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  digests(): FileDigests {
    const out: FileDigests = { size: this.size };
    for (const [a, h] of this.hashes) out[a] = h.digest('hex');
    return out;
  }
}

/** Hashes a file by streaming it; never holds more than one chunk in memory. */
export async function hashFile(path: string, algorithms: readonly HashAlgorithm[] = ['sha1', 'sha256']): Promise<FileDigests> {
  const hasher = new HashingStream(algorithms);
  await pipeline(createReadStream(path, { highWaterMark: CHUNK }), hasher, new Writable({ write: (_c, _e, cb) => cb() }));
  return hasher.digests();
}

/**
 * Copies `from` to `to` (which must not exist), hashing the bytes as they pass, and fsyncs the copy
 * so that a later rename makes it durable. `onProgress` is told the bytes copied so far.
 */
export async function copyAndHash(
  from: string | FileHandle,
  to: string,
  algorithms: readonly HashAlgorithm[] = ['sha1', 'sha256'],
  onProgress?: (bytes: number) => void,
): Promise<FileDigests> {
  const hasher = new HashingStream(algorithms);
  if (onProgress) hasher.on('data', () => onProgress(hasher.size));
  const source = typeof from === 'string' ? createReadStream(from, { highWaterMark: CHUNK }) : from.createReadStream({ highWaterMark: CHUNK });
  await pipeline(source, hasher, createWriteStream(to, { flags: 'wx', mode: 0o644, highWaterMark: CHUNK }));
  await fsyncPath(to);
  return hasher.digests();
}

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
