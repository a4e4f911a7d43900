import type { FileHandle } from 'node:fs/promises';
import type { SourceType } from '../core/terms.ts';
import { validateSrpm, validateSrpmHandle } from './srpm.ts';

/** What validating a source package tells us, whatever its type. */
export interface SourceInfo {
  name: string;
  version: string;
  release: string;
  buildRequires: string[];
}

/** Validates a source package of the given type; throws a PkgForgeError naming the file and the reason. */
export async function validateSource(type: SourceType, path: string): Promise<SourceInfo> {
  switch (type) {
    case 'SRPM':
      return validateSrpm(path);
  }
}

/** Validates a source package the caller has opened, reading only what it must (an RPM's headers); `file` names it in messages. */
export async function validateSourceHandle(type: SourceType, file: string, fh: FileHandle): Promise<SourceInfo> {
  switch (type) {
    case 'SRPM':
      return validateSrpmHandle(file, fh);
  }
}

/** The source type a file name suggests, or null when no handler takes it. */
export function sourceTypeOf(fileName: string): SourceType | null {
  if (fileName.endsWith('.src.rpm')) return 'SRPM';
  return null;
}
