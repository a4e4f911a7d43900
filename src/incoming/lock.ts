import { hostname } from 'node:os';
import { join } from 'node:path';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import lockfile from 'proper-lockfile';

/**
 * The incoming processor's lock: a directory in accepted made by proper-lockfile (atomic on local
 * and network file systems, its mtime refreshed while held, stale after 30 s without a refresh),
 * plus a note of the holder's host and pid, so a processor killed with SIGKILL on this host is
 * recognised at once instead of after the stale time.
 */
export interface ProcessorLock {
  release(): Promise<void>;
}

const LOCK_NAME = '.incoming.lock';
const OWNER_FILE = 'owner';
const STALE_MS = 30_000;

/** Takes the lock, or returns null when a live processor holds it. */
export async function takeProcessorLock(accepted: string): Promise<ProcessorLock | null> {
  const lockPath = join(accepted, LOCK_NAME);
  const attempt = () => lockfile.lock(accepted, { lockfilePath: lockPath, stale: STALE_MS, update: STALE_MS / 6, realpath: false });
  let release: () => Promise<void>;
  try {
    release = await attempt();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    if (!(await holderIsDeadHere(lockPath))) return null;
    await rm(lockPath, { recursive: true, force: true });
    try {
      release = await attempt();
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'ELOCKED') return null;
      throw again;
    }
  }
  const ownerFile = join(lockPath, OWNER_FILE);
  await writeFile(ownerFile, `${hostname()} ${process.pid}\n`).catch(() => {});
  return {
    // proper-lockfile removes its directory with rmdir, so the note must go first.
    release: async () => {
      await rm(ownerFile, { force: true }).catch(() => {});
      await release().catch(() => {});
    },
  };
}

/** A live holder writes its owner note within milliseconds of taking the lock. */
const OWNER_GRACE_MS = 2_000;

async function holderIsDeadHere(lockPath: string): Promise<boolean> {
  const owner = await readFile(join(lockPath, OWNER_FILE), 'utf8').catch(() => null);
  if (!owner) {
    // Being taken right now, or its holder died between taking it and writing the note.
    const age = await stat(lockPath).then((st) => Date.now() - st.mtimeMs, () => 0);
    return age > OWNER_GRACE_MS && age < STALE_MS;
  }
  const [host, pidText] = owner.trim().split(' ');
  const pid = Number(pidText);
  if (host !== hostname() || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
