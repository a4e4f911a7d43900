import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { printable } from '../core/names.ts';
import { messageOf } from '../util/errors.ts';
import { removeTree } from '../util/fs-safe.ts';

/** One job directory waiting in incoming. */
export interface QueueEntry {
  /** The directory's name (users choose it; the job id comes from build.yml). */
  name: string;
  path: string;
  /**
   * Where to read the entry's files: the directory opened once and checked to be the one scanned
   * (`/proc/self/fd/N`), so swapping the directory for a link after the scan cannot redirect the
   * processor. Unset before the entry is opened; `path` is still used to remove it.
   */
  base?: string;
  /** Owner of the directory: the submitter. */
  uid: number;
  /**
   * `dev:inode:birth` of the directory: which directory this is, whatever its name. The birth time
   * tells a new directory from an old one whose inode number the file system reused.
   */
  inode: string;
  /** The directory's change time, ms: the submission time, and the queue order. */
  ctimeMs: number;
  /**
   * The latest change to the directory or any file in it, ms: the grace period runs from here.
   * Read on demand (it stats every file), since only a job that is not ready yet needs it.
   */
  lastChange(): Promise<number>;
}

export interface QueueScan {
  /** Job directories, oldest first. */
  entries: QueueEntry[];
  /** Top-level things that are not job directories (plain files, symbolic links, removals cut short): to be removed. */
  cruft: string[];
  /** Directories a submitter is still writing (names starting with a dot), with their last change. */
  partial: QueueEntry[];
}

/** Entries being removed are first renamed with this prefix, so a removal cut short is finished by the next scan. */
export const REMOVING_PREFIX = '.removing-';

/**
 * Removes an incoming entry: renamed out of the queue in one step, then deleted, so a processor
 * killed half-way through never leaves half a job that looks like a submission still arriving.
 */
export async function discardEntry(path: string): Promise<void> {
  // No part of the old name: a name near the length limit must still fit.
  const doomed = join(dirname(path), `${REMOVING_PREFIX}${randomBytes(8).toString('hex')}`);
  try {
    await rename(path, doomed);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await removeTree(doomed);
}

/** Reads the incoming directory without following any link. */
export async function scanQueue(incoming: string): Promise<QueueScan> {
  const scan: QueueScan = { entries: [], cruft: [], partial: [] };
  for (const name of await readdir(incoming)) {
    const path = join(incoming, name);
    const st = await lstat(path, { bigint: true }).catch(() => null);
    if (!st) continue; // removed while we looked
    if (!st.isDirectory() || name.startsWith(REMOVING_PREFIX)) {
      scan.cruft.push(path);
      continue;
    }
    let latest: Promise<number> | null = null;
    const ctimeMs = Number(st.ctimeMs);
    const entry: QueueEntry = {
      name,
      path,
      uid: Number(st.uid),
      inode: `${st.dev}:${st.ino}:${st.birthtimeNs}`,
      ctimeMs,
      lastChange: () => (latest ??= lastChange(path, ctimeMs).then(Math.floor)),
    };
    (name.startsWith('.') ? scan.partial : scan.entries).push(entry);
  }
  scan.entries.sort((a, b) => a.ctimeMs - b.ctimeMs || (a.name < b.name ? -1 : 1));
  return scan;
}

async function lastChange(dir: string, dirCtime: number): Promise<number> {
  let latest = dirCtime;
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const st = await lstat(join(dir, name)).catch(() => null);
    if (st) latest = Math.max(latest, st.mtimeMs, st.ctimeMs);
  }
  return latest;
}

/** Whether this system has /proc/self/fd (Linux); elsewhere entries are read by path. */
let hasProcFd: boolean | undefined;

/** An entry opened for reading, or why the processor cannot open one that is still there. */
export type OpenedEntry = { entry: QueueEntry; close: () => Promise<void> } | { unreadable: string };

/**
 * Opens an entry's directory without following links and checks it is the directory the scan saw;
 * returns the entry with `base` set and a function to close it, null if it changed or went, or
 * why it cannot be opened (its owner's permissions) so that it is neither skipped silently nor
 * kept for ever.
 */
export async function openEntry(entry: QueueEntry): Promise<OpenedEntry | null> {
  let fh;
  try {
    fh = await open(entry.path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Gone, or replaced by something else since the scan: the next pass sees what is there now.
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return null;
    return { unreadable: messageOf(err) };
  }
  const st = await fh.stat({ bigint: true }).catch(() => null);
  if (!st || `${st.dev}:${st.ino}:${st.birthtimeNs}` !== entry.inode) {
    await fh.close();
    return null;
  }
  hasProcFd ??= await lstat('/proc/self/fd').then(
    () => true,
    () => false,
  );
  const base = hasProcFd ? `/proc/self/fd/${fh.fd}` : entry.path;
  return { entry: { ...entry, base }, close: () => fh.close() };
}

/**
 * The message of an error about an entry, in which the entry's `/proc/self/fd/N` is put
 * back as the path people know the job by.
 */
export function entryMessage(entry: QueueEntry, err: unknown): string {
  const message = messageOf(err);
  if (!entry.base || entry.base === entry.path) return message;
  return message.replace(new RegExp(`${entry.base}(?![0-9])`, 'g'), () => printable(entry.path, 400));
}
