import { stat } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FollowLogOptions {
  /** Where to start (a byte offset: resuming a stream). */
  offset?: number;
  /** Keep reading as the log grows until the attempt has ended; otherwise read what is there. */
  follow: boolean;
  /** Whether the attempt is still running (asked between reads). */
  stillRunning: () => Promise<boolean>;
  /** Stop early (the reader went away). */
  signal?: AbortSignal;
  pollMs?: number;
}

/**
 * An attempt's build log, chunk by chunk with the offset after each, as it grows. The registry
 * may say the attempt ended before its daemon wrote the last lines: once the attempt's
 * buildinfo.yml exists (written after the log is closed), or 5 s after the end, one more read
 * yields what is left. Used by `pkgforge logs --follow` and the API's event stream.
 */
export async function* followLog(
  path: string,
  options: FollowLogOptions,
): AsyncGenerator<{ chunk: Buffer; offset: number }> {
  let offset = options.offset ?? 0;
  let endedAt: number | null = null;
  let finishing = false;
  const buffer = Buffer.alloc(64 * 1024);
  for (;;) {
    const fh = await open(path, 'r').catch(() => null);
    if (fh) {
      try {
        for (;;) {
          const { bytesRead } = await fh.read(buffer, 0, buffer.length, offset);
          if (bytesRead === 0) break;
          offset += bytesRead;
          yield { chunk: Buffer.from(buffer.subarray(0, bytesRead)), offset };
        }
      } finally {
        await fh.close();
      }
    }
    if (!options.follow || finishing || options.signal?.aborted) return;
    if (
      endedAt !== null &&
      ((await stat(join(dirname(path), 'buildinfo.yml')).catch(() => null)) || Date.now() - endedAt > 5000)
    ) {
      finishing = true;
      continue;
    }
    if (endedAt === null && !(await options.stillRunning())) endedAt = Date.now();
    await sleep(options.pollMs ?? 250);
  }
}
