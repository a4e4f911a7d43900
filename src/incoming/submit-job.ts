import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { normaliseManifest, type Manifest, type PackageEntry } from '../core/manifest.ts';
import { DEFAULT_SUBMISSION_LIMITS, jobSizeProblem, type SubmissionLimits } from '../core/limits.ts';
import { generateJobId, printable } from '../core/names.ts';
import { sourceTypeOf, validateSource } from '../sources/index.ts';
import { ErrorCode, PkgForgeError, messageOf } from '../util/errors.ts';
import { assertPackageNames, JobDirWriter } from '../sources/job-dir.ts';

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
  /** `max_package_size`, `max_job_size` (defaults when unset): refused before anything is written. */
  limits?: SubmissionLimits;
  /** Told of the bytes copied so far, out of the total. */
  onProgress?: (copied: number, total: number) => void;
  onFile?: (message: string) => void;
}

/**
 * Checks local source packages the way the farm will, before anything is written or sent: each is
 * a regular file of a supported type, with a safe name unlike the others' (also once Unicode is
 * normalised), within the size limits. Returns their sizes.
 */
export async function checkLocalPackages(files: readonly string[], limits: SubmissionLimits): Promise<number[]> {
  const sizes: number[] = [];
  for (const file of files) {
    const st = await stat(file).catch(() => null);
    if (!st?.isFile())
      throw new PkgForgeError(
        ErrorCode.sourcePackage,
        `The file '${printable(file, 400)}' does not exist or is not a regular file`,
      );
    sizes.push(st.size);
  }
  assertPackageNames(files.map((f) => basename(f)));
  const tooLarge = jobSizeProblem(
    files.map((f, i) => ({ file: basename(f), size: sizes[i]! })),
    limits,
  );
  if (tooLarge) throw new PkgForgeError(ErrorCode.tooLarge, `The job cannot be submitted: ${tooLarge}`);
  return sizes;
}

/**
 * Writes a job into incoming: every file validated before anything is copied, copies hashed as
 * they stream, the manifest written last, and the whole job directory renamed into place in one
 * step, so the incoming processor never sees half a job. On failure nothing is left behind.
 */
export async function submitJob(req: SubmitRequest): Promise<Manifest> {
  if (req.files.length === 0) throw new PkgForgeError(ErrorCode.usage, 'No packages specified, nothing to do.');
  if (!req.bucket)
    throw new PkgForgeError(
      ErrorCode.usage,
      'Required option missing: bucket (use --bucket NAME or set `bucket` in submit.yml)',
    );

  const sizes = await checkLocalPackages(req.files, req.limits ?? DEFAULT_SUBMISSION_LIMITS);
  const total = sizes.reduce((sum, n) => sum + n, 0);
  for (const file of req.files) await validateSource(sourceTypeOf(basename(file))!, file);

  // The manifest is checked before copying too (id, bucket, filters, addresses), with placeholder
  // checksums, so a bad option costs no copy.
  const id = req.id ?? generateJobId();
  const draft = (packages: PackageEntry[]) =>
    normaliseManifest(
      {
        id,
        bucket: req.bucket,
        platforms: req.platforms,
        archs: req.archs,
        report: req.report,
        packages,
        submitter: req.submitter,
        subtime: null,
      },
      `job ${id}`,
    );
  draft(req.files.map((f) => ({ file: basename(f), type: 'SRPM', size: 0, sha1sum: '0'.repeat(40) })));
  const writer = await JobDirWriter.create(req.target, id);
  try {
    let copied = 0;
    for (const file of req.files) {
      req.onFile?.(`Copying '${file}' to '${req.target}'`);
      const entry = await writer.addFile(file, (n) => req.onProgress?.(copied + n, total));
      copied += entry.size;
    }
    const manifest = draft([...writer.entries]);
    await writer.finish(manifest);
    return manifest;
  } catch (err) {
    await writer.abandon();
    if (err instanceof PkgForgeError) throw err;
    throw new PkgForgeError(ErrorCode.transfer, `Job submission failed: ${messageOf(err)}`, { cause: err });
  }
}
