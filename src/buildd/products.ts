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
 * hard link to something else), of at most `maxBytes`, with a safe name ending in one of `endings`,
 * and pass `check` (the farm's own reading of what it claims to be) on the daemon's copy. Anything
 * else fails the task with the reason. It is opened once without following links and copied from
 * that descriptor, so what is checked is what is kept.
 */
async function takeProduct(
  path: string,
  dest: string,
  maxBytes: number,
  endings: readonly string[],
  check: (copy: string) => Promise<string | null>,
): Promise<string> {
  const name = basename(path);
  const refuse = (why: string) => new PhaseFailure(`Refused the product ${printable(name)}: ${why}`);
  const problem = fileNameProblem(name);
  if (problem) throw refuse(problem);
  if (!endings.some((e) => name.endsWith(e))) throw refuse(`its name does not end in ${endings.join(' or ')}`);
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
  const why = await check(tmp).catch((err: Error) => err.message);
  if (why) {
    await unlink(tmp).catch(() => {});
    throw refuse(why);
  }
  await rename(tmp, target);
  return target;
}

/** Takes a binary or source RPM out of the work directory (see takeProduct): read by our own header reader. */
export function takeRpmProduct(
  path: string,
  dest: string,
  kind: 'binary' | 'source',
  maxBytes: number,
): Promise<string> {
  return takeProduct(path, dest, maxBytes, ['.rpm'], async (copy) => {
    try {
      const { lead } = await readRpmHeader(copy);
      return lead.type !== (kind === 'source' ? 1 : 0) ? `it is not a ${kind} package` : null;
    } catch (err) {
      return `it is not a valid RPM: ${(err as Error).message}`;
    }
  });
}

/** What a Debian build leaves: binary packages, and the `.changes` and `.buildinfo` that describe them. */
export const DEBIAN_PRODUCT_ENDINGS = ['.deb', '.changes', '.buildinfo'] as const;

/** The largest `.changes` or `.buildinfo` taken: they list files, they do not hold them. */
const CONTROL_FILE_MAX = 1024 * 1024;

/**
 * Takes a Debian product out of the work directory (see takeProduct): a `.deb` must be an ar
 * archive whose first member is `debian-binary` (what dpkg reads first); a `.changes` or
 * `.buildinfo`, at most 1 MiB of UTF-8 text.
 */
export function takeDebianProduct(path: string, dest: string, maxBytes: number): Promise<string> {
  const isDeb = path.endsWith('.deb');
  return takeProduct(
    path,
    dest,
    isDeb ? maxBytes : Math.min(maxBytes, CONTROL_FILE_MAX),
    DEBIAN_PRODUCT_ENDINGS,
    async (copy) => {
      const fh = await open(copy, 'r');
      try {
        if (isDeb) {
          const head = Buffer.alloc(24);
          await fh.read(head, 0, 24, 0);
          return head.toString('latin1', 0, 8) === '!<arch>\n' &&
            head.toString('latin1', 8, 24).startsWith('debian-binary')
            ? null
            : 'it is not a Debian binary package (no ar archive starting with debian-binary)';
        }
        const text = await fh.readFile();
        return new TextDecoder('utf-8', { fatal: true }).decode(text).includes('\0') ? 'it holds a NUL byte' : null;
      } catch (err) {
        return err instanceof TypeError ? 'it is not UTF-8 text' : (err as Error).message;
      } finally {
        await fh.close();
      }
    },
  );
}
