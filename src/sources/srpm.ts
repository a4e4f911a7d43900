import type { FileHandle } from 'node:fs/promises';
import { printable } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { readRpmHeader, RpmFormatError, RpmTag, type RpmHeader } from './rpm-header.ts';
import { withSourceFile } from './source-file.ts';

/** What a valid source RPM tells us about itself. */
export interface SrpmInfo {
  name: string;
  version: string;
  release: string;
  epoch: number | null;
  buildRequires: string[];
  files: string[];
  specFile: string;
}

/**
 * Validates a source RPM by reading its headers (no rpm tools needed): the name ends in .src.rpm,
 * it is a regular file, the lead and header are well formed, it is a source package, and its file
 * list holds a `.spec` file. Errors name the file and the reason.
 */
export async function validateSrpm(path: string): Promise<SrpmInfo> {
  return withSourceFile(path, validateSrpmHandle);
}

/**
 * Validates a source RPM the caller has opened (and checked to be a regular file), named `file`
 * in messages; only its lead and headers are read, however large the file.
 */
export async function validateSrpmHandle(file: string, fh: FileHandle): Promise<SrpmInfo> {
  const fail = (reason: string) => new PkgForgeError(ErrorCode.sourcePackage, `${printable(file)}: ${reason}`);
  if (!file.endsWith('.src.rpm')) throw fail('the name of a source RPM must end with .src.rpm');
  try {
    const { lead, header } = await readRpmHeader(fh);
    const isSource = lead.type === 1 && (header.has(RpmTag.sourcePackage) || !header.has(RpmTag.sourceRpm));
    if (!isSource) throw fail('it is a binary RPM, not a source RPM');
    const name = header.string(RpmTag.name);
    const version = header.string(RpmTag.version);
    const release = header.string(RpmTag.release);
    if (!name || !version || !release) throw fail('its header has no name, version or release');
    const files = fileList(header);
    const specFile = files.find((f) => f.endsWith('.spec'));
    if (!specFile) throw fail('it does not contain a .spec file');
    const epochs = header.int32s(RpmTag.epoch);
    const buildRequires = [...new Set(header.strings(RpmTag.requireName).filter((r) => !r.startsWith('rpmlib(')))];
    return { name, version, release, epoch: epochs[0] ?? null, buildRequires, files, specFile };
  } catch (err) {
    if (err instanceof RpmFormatError) throw fail(`not a valid RPM: ${err.message}`);
    if (err instanceof PkgForgeError) throw err;
    throw fail(`cannot be read: ${(err as Error).message}`);
  }
}

function fileList(header: RpmHeader): string[] {
  const baseNames = header.strings(RpmTag.baseNames);
  if (baseNames.length > 0) {
    const dirNames = header.strings(RpmTag.dirNames);
    const dirIndexes = header.int32s(RpmTag.dirIndexes);
    if (dirIndexes.length !== baseNames.length)
      throw new RpmFormatError('the file list is inconsistent (directory indexes do not match file names)');
    return baseNames.map((b, i) => `${dirNames[dirIndexes[i] ?? -1] ?? ''}${b}`);
  }
  return header.strings(RpmTag.oldFilenames);
}
