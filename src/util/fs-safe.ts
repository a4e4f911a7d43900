import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, copyFile, link, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { ErrorCode, PkgForgeError } from './errors.ts';
import { sharedRuns } from './shared-run.ts';

/**
 * Writes a file atomically: a temporary name in the same directory, fsync, rename, fsync of the
 * directory. A reader sees the old file or the whole new one, never half of it.
 */
export async function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** Flushes a file's data to disk (a product kept before its outcome is recorded). */
export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes a rename or creation in a directory durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await fh.close();
  }
}

const sharedDirSyncs = new Map<string, () => Promise<void>>();

/**
 * fsyncDir for many callers at once (copies renamed into one directory side by side): each
 * caller's promise settles after an fsync that began after its call, and callers in flight
 * together share one (util/shared-run.ts).
 */
export function fsyncDirShared(dir: string): Promise<void> {
  let sync = sharedDirSyncs.get(dir);
  if (!sync) {
    sync = sharedRuns(() => fsyncDir(dir));
    sharedDirSyncs.set(dir, sync);
  }
  return sync();
}

/** `parent/name`, refusing any name that would escape `parent`. */
export function childPath(parent: string, name: string): string {
  const base = resolve(parent);
  const full = resolve(base, name);
  if (
    name.length === 0 ||
    name.includes('\0') ||
    !full.startsWith(base + sep) ||
    full.slice(base.length + 1).includes(sep)
  ) {
    throw new PkgForgeError(ErrorCode.unsafePath, `'${name}' is not a plain name inside ${parent}`);
  }
  return full;
}

export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 3 });
}

/** A hard link of `from` at `to`, or a copy where a link cannot be made (another file system, another owner). */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  await link(from, to).catch(() => copyFile(from, to));
}

export async function ensureDir(path: string, mode = 0o755): Promise<void> {
  await mkdir(path, { recursive: true, mode });
}

export async function isWritableDir(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses a directory that anyone but its owner may write: accepted/ must be trustworthy (only the
 * incoming processor writes it) and repos/ is what every client installs from.
 */
export async function assertOwnerOnlyWritable(path: string, what: string): Promise<void> {
  const st = await stat(path).catch(() => null);
  if (st && (st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    throw new PkgForgeError(
      ErrorCode.directory,
      `The ${what} directory '${path}' may be written by ${st.mode & 0o002 ? 'anyone' : 'its group'} (mode ${mode}); only its owner may write it: chmod go-w '${path}'`,
    );
  }
}
