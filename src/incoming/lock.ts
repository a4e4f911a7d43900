import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../util/process.ts';

/**
 * The incoming processor's lock: a directory in accepted holding a note of its owner (host, pid,
 * a random token). It is taken by renaming a prepared directory into place, which is atomic on
 * local and network file systems and fails while the lock exists, so the note is there from the
 * first instant. A holder refreshes the note every few seconds; a lock whose holder died on this
 * host, or whose note went stale, is taken over by renaming it away, which only one contender can
 * do. A holder that finds its note gone or replaced has lost the lock and is told so.
 */
export interface ProcessorLock {
  /** Aborted if the lock was taken over (this process was stalled past the stale time). */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

const LOCK_NAME = '.incoming.lock';
const OWNER_FILE = 'owner';
const REFRESH_MS = 5_000;
const STALE_MS = 30_000;

interface Owner {
  host: string;
  pid: number;
  token: string;
}

const readOwner = async (dir: string): Promise<Owner | null> => {
  try {
    return JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as Owner;
  } catch {
    return null;
  }
};

/** Takes the lock, or returns null when a live processor holds it. */
export async function takeProcessorLock(accepted: string): Promise<ProcessorLock | null> {
  const lockPath = join(accepted, LOCK_NAME);
  const me: Owner = { host: hostname(), pid: process.pid, token: randomBytes(8).toString('hex') };
  const prepared = join(accepted, `${LOCK_NAME}.new-${me.token}`);
  await mkdir(prepared);
  await writeFile(join(prepared, OWNER_FILE), JSON.stringify(me));
  try {
    for (let tries = 0; ; tries++) {
      try {
        await rename(prepared, lockPath);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EISDIR') throw err;
      }
      if (tries > 0 || !(await takeOverIfAbandoned(accepted, lockPath))) return null;
    }
  } finally {
    await rm(prepared, { recursive: true, force: true });
  }
  const lost = new AbortController();
  const timer = setInterval(() => {
    void (async () => {
      const owner = await readOwner(lockPath);
      if (owner?.token !== me.token) {
        lost.abort(new Error('the incoming lock was taken over by another processor'));
        clearInterval(timer);
        return;
      }
      const now = new Date();
      await utimes(join(lockPath, OWNER_FILE), now, now).catch(() => {});
    })();
  }, REFRESH_MS);
  timer.unref();
  return {
    lost: lost.signal,
    release: async () => {
      clearInterval(timer);
      if ((await readOwner(lockPath))?.token !== me.token) return;
      const gone = join(accepted, `${LOCK_NAME}.gone-${me.token}`);
      await rename(lockPath, gone).catch(() => {});
      await rm(gone, { recursive: true, force: true });
    },
  };
}

/**
 * Removes an abandoned lock so the caller may try again; true if it did. Contenders first take a
 * short-lived takeover mutex (mkdir, which only one can do) and look at the lock again while
 * holding it, so a live lock is never removed and two contenders never both take over.
 */
async function takeOverIfAbandoned(accepted: string, lockPath: string): Promise<boolean> {
  if (!(await isAbandoned(lockPath))) return false;
  const mutex = `${lockPath}.takeover`;
  try {
    await mkdir(mutex);
  } catch {
    // Another contender is taking over; a mutex left by one that died is cleared after a while.
    const age = await stat(mutex).then(
      (st) => Date.now() - st.mtimeMs,
      () => 0,
    );
    if (age > TAKEOVER_STALE_MS) await rm(mutex, { recursive: true, force: true });
    return false;
  }
  try {
    if (!(await isAbandoned(lockPath))) return false;
    const moved = join(accepted, `${LOCK_NAME}.dead-${randomBytes(8).toString('hex')}`);
    await rename(lockPath, moved);
    await rm(moved, { recursive: true, force: true });
    return true;
  } finally {
    await rm(mutex, { recursive: true, force: true });
  }
}

const TAKEOVER_STALE_MS = 10_000;

/** Whether the lock's holder died on this host, or has not refreshed its note for the stale time. */
async function isAbandoned(lockPath: string): Promise<boolean> {
  const owner = await readOwner(lockPath);
  if (owner && owner.host === hostname() && !isProcessAlive(owner.pid)) return true;
  const noteAge = await stat(join(lockPath, OWNER_FILE)).then(
    (st) => Date.now() - st.mtimeMs,
    () => null,
  );
  if (noteAge !== null) return noteAge > STALE_MS;
  // No note (a lock being removed, or damaged): judge by the directory itself.
  return stat(lockPath).then(
    (st) => Date.now() - st.mtimeMs > STALE_MS,
    () => false,
  );
}
