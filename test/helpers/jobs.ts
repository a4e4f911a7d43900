import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import YAML from 'yaml';

export interface JobDirOptions {
  /** Values that replace or add to the manifest's top-level keys. */
  manifest?: Record<string, unknown>;
  /** Write this text as build.yml instead of a manifest. */
  rawManifest?: string;
  /** Leave build.yml out. */
  noManifest?: boolean;
  /** Change a package entry after its checksums are computed. */
  editPackage?: (entry: Record<string, unknown>, index: number) => void;
}

export function digest(path: string, algorithm: 'sha1' | 'sha256'): string {
  return createHash(algorithm).update(readFileSync(path)).digest('hex');
}

/**
 * Writes a job directory into incoming by hand, as a user (or an attacker) could, bypassing
 * `pkgforge submit`'s checks.
 */
export function writeJobDir(incoming: string, name: string, files: string[], options: JobDirOptions = {}): string {
  const dir = join(incoming, name);
  mkdirSync(dir);
  const packages = files.map((f, i) => {
    copyFileSync(f, join(dir, basename(f)));
    const entry: Record<string, unknown> = {
      file: basename(f),
      type: 'SRPM',
      size: readFileSync(f).length,
      sha1sum: digest(f, 'sha1'),
      sha256sum: digest(f, 'sha256'),
    };
    options.editPackage?.(entry, i);
    return entry;
  });
  if (!options.noManifest) {
    const text =
      options.rawManifest ??
      YAML.stringify({ id: name, bucket: 'devel', platforms: ['auto'], archs: ['all'], packages, ...options.manifest });
    writeFileSync(join(dir, 'build.yml'), text);
  }
  return dir;
}
