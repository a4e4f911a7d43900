import { lstat, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { normaliseManifest, type Manifest, type PackageEntry, type PackagePart } from '../core/manifest.ts';
import { DEFAULT_SUBMISSION_LIMITS, jobSizeProblem, type SubmissionLimits } from '../core/limits.ts';
import { generateJobId, printable } from '../core/names.ts';
import { sourceTypeOf, validateSource, type SourceInfo } from '../sources/index.ts';
import { ErrorCode, PkgForgeError, messageOf } from '../util/errors.ts';
import { assertFileNames, assertPackageNames, JobDirWriter } from '../sources/job-dir.ts';
import { hashFile } from '../util/hash.ts';

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
  const types = [...new Set(files.map((f) => sourceTypeOf(basename(f))))];
  if (types.length > 1)
    throw new PkgForgeError(
      ErrorCode.usage,
      `A job holds one kind of source package: submit the ${types.join(' and the ')} packages as separate jobs`,
    );
  const tooLarge = jobSizeProblem(
    files.map((f, i) => ({ file: basename(f), size: sizes[i]! })),
    limits,
  );
  if (tooLarge) throw new PkgForgeError(ErrorCode.tooLarge, `The job cannot be submitted: ${tooLarge}`);
  return sizes;
}

/**
 * The files a local `.dsc` lists, each checked where it must be (beside the `.dsc`): a regular
 * file of the listed size and SHA-256. Nothing is written before all of them are right.
 */
async function checkLocalParts(dsc: string, parts: readonly PackagePart[]): Promise<void> {
  const owner = printable(basename(dsc));
  for (const part of parts) {
    const path = join(dirname(dsc), part.file);
    const st = await lstat(path).catch(() => null);
    if (!st?.isFile())
      throw new PkgForgeError(
        ErrorCode.sourcePackage,
        `${owner} lists ${printable(part.file)}, which is not beside it (${printable(dirname(dsc), 400)}) as a regular file`,
      );
    if (st.size !== part.size)
      throw new PkgForgeError(
        ErrorCode.checksum,
        `${owner} lists ${printable(part.file)} as ${part.size} bytes, and it is ${st.size} bytes`,
      );
    const d = await hashFile(path, ['sha256']);
    if (d.sha256 !== part.sha256sum)
      throw new PkgForgeError(
        ErrorCode.checksum,
        `${owner}: ${printable(part.file)} does not have the SHA-256 it lists`,
      );
  }
}

/**
 * Validates each package and checks the files each lists (a `.dsc`'s): first their names and the
 * sizes listed against the limits, then each file itself (its size and SHA-256), so a job the farm
 * would refuse costs no hashing.
 */
async function checkListedFiles(
  files: readonly string[],
  sizes: readonly number[],
  limits: SubmissionLimits,
): Promise<SourceInfo[]> {
  const infos: SourceInfo[] = [];
  for (const file of files) infos.push(await validateSource(sourceTypeOf(basename(file))!, file));
  const all = files.flatMap((f, i) => [{ file: basename(f), size: sizes[i]! }, ...infos[i]!.parts]);
  assertFileNames(all.map((f) => f.file));
  const tooLarge = jobSizeProblem(all, limits);
  if (tooLarge) throw new PkgForgeError(ErrorCode.tooLarge, `The job cannot be submitted: ${tooLarge}`);
  for (const [i, file] of files.entries()) await checkLocalParts(file, infos[i]!.parts);
  return infos;
}

/**
 * The files to send for a job's packages, in order: each package, then the files it lists (a
 * `.dsc`'s), all checked locally first as a local submission checks them.
 */
export async function filesToSend(files: readonly string[], limits: SubmissionLimits): Promise<string[]> {
  const sizes = await checkLocalPackages(files, limits);
  const infos = await checkListedFiles(files, sizes, limits);
  return files.flatMap((f, i) => [f, ...infos[i]!.parts.map((p) => join(dirname(f), p.file))]);
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

  const limits = req.limits ?? DEFAULT_SUBMISSION_LIMITS;
  const sizes = await checkLocalPackages(req.files, limits);
  const infos = await checkListedFiles(req.files, sizes, limits);
  const total = infos.flatMap((info, i) => [sizes[i]!, ...info.parts.map((p) => p.size)]).reduce((a, b) => a + b, 0);

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
  draft(
    req.files.map((f, i) => ({
      file: basename(f),
      type: sourceTypeOf(basename(f))!,
      size: 0,
      sha1sum: '0'.repeat(40),
      ...(infos[i]!.parts.length > 0 && { parts: infos[i]!.parts }),
    })),
  );
  const writer = await JobDirWriter.create(req.target, id);
  try {
    let copied = 0;
    const packages: PackageEntry[] = [];
    for (const [i, file] of req.files.entries()) {
      req.onFile?.(`Copying '${file}' to '${req.target}'`);
      const entry = await writer.addFile(file, (n) => req.onProgress?.(copied + n, total));
      copied += entry.size;
      const parts: PackagePart[] = [];
      for (const part of infos[i]!.parts) {
        req.onFile?.(`Copying '${join(dirname(file), part.file)}' to '${req.target}'`);
        parts.push(
          await writer.addPart(join(dirname(file), part.file), part, basename(file), (n) =>
            req.onProgress?.(copied + n, total),
          ),
        );
        copied += part.size;
      }
      packages.push(parts.length > 0 ? { ...entry, parts } : entry);
    }
    const manifest = draft(packages);
    await writer.finish(manifest);
    return manifest;
  } catch (err) {
    await writer.abandon();
    if (err instanceof PkgForgeError) throw err;
    throw new PkgForgeError(ErrorCode.transfer, `Job submission failed: ${messageOf(err)}`, { cause: err });
  }
}
