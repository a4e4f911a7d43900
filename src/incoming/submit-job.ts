import { randomBytes } from 'node:crypto';
import { lstat, mkdir, rename, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MANIFEST_FILE, normaliseManifest, serialiseManifest, type Manifest, type PackageEntry } from '../core/manifest.ts';
import { generateJobId } from '../core/names.ts';
import { sourceTypeOf, validateSource } from '../sources/index.ts';
import { ErrorCode, PkgForgeError, messageOf } from '../util/errors.ts';
import { childPath, fsyncDir, removeTree, writeFileAtomic } from '../util/fs-safe.ts';
import { copyAndHash } from '../util/hash.ts';

export interface SubmitRequest {
  /** Paths of the source packages, in build order. */
  files: string[];
  /** The incoming directory (or where it is mounted). */
  target: string;
  bucket: string | undefined;
  platforms: string[];
  archs: string[];
  report: string[];
  id?: string | undefined;
  submitter: string | null;
  /** Told of the bytes copied so far, out of the total. */
  onProgress?: (copied: number, total: number) => void;
  onFile?: (message: string) => void;
}

/**
 * Writes a job into incoming: every file validated before anything is copied, copies hashed as
 * they stream, the manifest written last, and the whole job directory renamed into place in one
 * step, so the incoming processor never sees half a job. On failure nothing is left behind.
 */
export async function submitJob(req: SubmitRequest): Promise<Manifest> {
  if (req.files.length === 0) throw new PkgForgeError(ErrorCode.usage, 'No packages specified, nothing to do.');
  if (!req.bucket) throw new PkgForgeError(ErrorCode.usage, 'Required option missing: bucket (use --bucket NAME or set `bucket` in submit.yml)');
  const targetStat = await stat(req.target).catch(() => null);
  if (!targetStat?.isDirectory()) throw new PkgForgeError(ErrorCode.directory, `Cannot find build job submission directory ${req.target}`);

  const seen = new Set<string>();
  let total = 0;
  for (const file of req.files) {
    const st = await stat(file).catch(() => null);
    if (!st?.isFile()) throw new PkgForgeError(ErrorCode.sourcePackage, `The file '${file}' does not exist or is not a regular file`);
    const type = sourceTypeOf(basename(file));
    if (!type) throw new PkgForgeError(ErrorCode.sourcePackage, `Unsupported package type for ${file}, is it really a source package?`);
    await validateSource(type, file);
    if (seen.has(basename(file))) throw new PkgForgeError(ErrorCode.sourcePackage, `Two packages are named ${basename(file)}; file names within a job must differ`);
    seen.add(basename(file));
    total += st.size;
  }

  // The manifest is checked before copying too (id, bucket, filters, addresses), with placeholder
  // checksums, so a bad option costs no copy.
  const id = req.id ?? generateJobId();
  const draft = (packages: PackageEntry[]) =>
    normaliseManifest(
      { id, bucket: req.bucket, platforms: req.platforms, archs: req.archs, report: req.report, packages, submitter: req.submitter, subtime: null },
      `job ${id}`,
    );
  draft(req.files.map((f) => ({ file: basename(f), type: 'SRPM', size: 0, sha1sum: '0'.repeat(40) })));
  const finalDir = childPath(req.target, id);
  if (await lstat(finalDir).catch(() => null)) throw new PkgForgeError(ErrorCode.jobId, `Job ${id} is already in ${req.target}; choose another id`);

  const partial = join(req.target, `.${id}.partial-${randomBytes(4).toString('hex')}`);
  await mkdir(partial, { mode: 0o755 });
  try {
    const packages: PackageEntry[] = [];
    let copied = 0;
    for (const file of req.files) {
      req.onFile?.(`Copying '${file}' to '${req.target}'`);
      const d = await copyAndHash(file, join(partial, basename(file)), ['sha1', 'sha256'], (n) => req.onProgress?.(copied + n, total));
      copied += d.size;
      packages.push({ file: basename(file), type: sourceTypeOf(basename(file))!, size: d.size, sha1sum: d.sha1!, sha256sum: d.sha256! });
    }
    const manifest = draft(packages);
    await writeFileAtomic(join(partial, MANIFEST_FILE), serialiseManifest(manifest));
    if (await lstat(finalDir).catch(() => null)) throw new PkgForgeError(ErrorCode.jobId, `Job ${id} is already in ${req.target}; choose another id`);
    await rename(partial, finalDir);
    await fsyncDir(req.target);
    return manifest;
  } catch (err) {
    await removeTree(partial);
    if (err instanceof PkgForgeError) throw err;
    throw new PkgForgeError(ErrorCode.transfer, `Job submission failed: ${messageOf(err)}`, { cause: err });
  }
}
