import type { FileHandle } from 'node:fs/promises';
import type { PackagePart } from '../core/manifest.ts';
import type { SourceType } from '../core/terms.ts';
import { validateDsc, validateDscHandle, type DscInfo } from './dsc.ts';
import { validateSrpm, validateSrpmHandle } from './srpm.ts';

/** What validating a source package tells us, whatever its type. */
export interface SourceInfo {
  name: string;
  version: string;
  release: string;
  buildRequires: string[];
  /** The files it brings with it (a `.dsc`'s), each to be in the job beside it; none for an SRPM. */
  parts: PackagePart[];
}

const fromDsc = (d: DscInfo): SourceInfo => ({
  name: d.name,
  version: d.version,
  release: d.release,
  buildRequires: d.buildRequires,
  parts: d.parts,
});

/** Validates a source package of the given type; throws a PkgForgeError naming the file and the reason. */
export async function validateSource(type: SourceType, path: string): Promise<SourceInfo> {
  switch (type) {
    case 'SRPM':
      return { ...(await validateSrpm(path)), parts: [] };
    case 'DSC':
      return fromDsc(await validateDsc(path));
  }
}

/** Validates a source package the caller has opened, reading only what it must (an RPM's headers); `file` names it in messages. */
export async function validateSourceHandle(type: SourceType, file: string, fh: FileHandle): Promise<SourceInfo> {
  switch (type) {
    case 'SRPM':
      return { ...(await validateSrpmHandle(file, fh)), parts: [] };
    case 'DSC':
      return fromDsc(await validateDscHandle(file, fh));
  }
}

/** The source type a file name suggests, or null when no handler takes it. */
export function sourceTypeOf(fileName: string): SourceType | null {
  if (fileName.endsWith('.src.rpm')) return 'SRPM';
  if (fileName.endsWith('.dsc')) return 'DSC';
  return null;
}
