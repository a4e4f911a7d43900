import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { printable } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';

/**
 * Opens a source package by path for its validator (`validate(file, fh)`): never through a
 * symbolic link (O_NOFOLLOW), never blocking on a FIFO (O_NONBLOCK), and a regular file by the
 * opened handle, so what is validated is the file that was checked. Errors name the file.
 */
export async function withSourceFile<T>(
  path: string,
  validate: (file: string, fh: FileHandle) => Promise<T>,
): Promise<T> {
  const file = basename(path);
  const fail = (reason: string) => new PkgForgeError(ErrorCode.sourcePackage, `${printable(file)}: ${reason}`);
  let fh: FileHandle;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw fail('the file does not exist');
    if (code === 'ELOOP') throw fail('the file is a symbolic link, not a regular file');
    throw fail(`cannot be read: ${(err as Error).message}`);
  }
  try {
    if (!(await fh.stat()).isFile()) throw fail('it is not a regular file');
    return await validate(file, fh);
  } finally {
    await fh.close();
  }
}
