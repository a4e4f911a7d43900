import { constants } from 'node:fs';
import { lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileNameProblem, printable } from '../core/names.ts';
import { formatSize } from '../core/sizes.ts';
import { readRpmHeader } from '../sources/rpm-header.ts';
import { PhaseFailure } from './phases.ts';

/**
 * Checks that every directory from `base` down to `base/relative` is a real directory, not a
 * symbolic link: the build owns them and could point one at a host directory whose files the
 * daemon can read. Called once the build's processes are gone, so nothing changes meanwhile.
 */
export async function assertRealDirectories(base: string, relative: string): Promise<boolean> {
  let path = base;
  for (const part of relative.split('/').filter(Boolean)) {
    path = join(path, part);
    const st = await lstat(path).catch(() => null);
    if (!st) return false;
    if (!st.isDirectory())
      throw new PhaseFailure(
        `Refused the products in ${relative}: ${printable(part)} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}`,
      );
  }
  return true;
}

/**
 * Takes one product out of a build's work directory into `dest`, the daemon's own directory. The
 * build is untrusted, so the file must be a regular file with one link (no symlink, no device, no
 * hard link to something else), of at most `maxBytes`, with a safe name, and read as a package of
 * the expected kind by the farm's own header reader. Anything else fails the task with the reason.
 * It is opened once without following links and copied from that descriptor, so what is checked
 * is what is kept.
 */
export async function takeRpmProduct(
  path: string,
  dest: string,
  kind: 'binary' | 'source',
  maxBytes: number,
): Promise<string> {
  const name = basename(path);
  const refuse = (why: string) => new PhaseFailure(`Refused the product ${printable(name)}: ${why}`);
  const problem = fileNameProblem(name);
  if (problem) throw refuse(problem);
  if (!name.endsWith('.rpm')) throw refuse('its name does not end in .rpm');
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (err: NodeJS.ErrnoException) => {
      throw refuse(err.code === 'ELOOP' ? 'it is a symbolic link' : `it cannot be opened (${err.code ?? err.message})`);
    },
  );
  const target = join(dest, name);
  const tmp = join(dest, `.${name}.partial`);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw refuse('it is not a regular file');
    if (st.nlink !== 1) throw refuse(`it has ${st.nlink} hard links`);
    if (st.size > maxBytes)
      throw refuse(`it is ${formatSize(st.size)}, more than the limit of ${formatSize(maxBytes)}`);
    const out = await open(tmp, 'wx', 0o644);
    // The read stops at the size checked above, whatever the file does meanwhile.
    await pipeline(
      fh.createReadStream({ start: 0, end: Math.max(0, st.size - 1), autoClose: false }),
      out.createWriteStream(),
    );
  } finally {
    await fh.close();
  }
  try {
    const { lead } = await readRpmHeader(tmp);
    if (lead.type !== (kind === 'source' ? 1 : 0)) throw refuse(`it is not a ${kind} package`);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err instanceof PhaseFailure ? err : refuse(`it is not a valid RPM: ${(err as Error).message}`);
  }
  await rename(tmp, target);
  return target;
}
