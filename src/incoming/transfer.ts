import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { JobProblem } from './job-problem.ts';
import { lstat, mkdir, open, readdir, rename, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { verifySignature } from '../sources/signature.ts';
import { DEFAULT_SUBMISSION_LIMITS, jobSizeProblem, type SubmissionLimits } from '../core/limits.ts';
import {
  MANIFEST_FILE,
  packageFiles,
  serialiseManifest,
  type Manifest,
  type PackageEntry,
  type PackagePart,
} from '../core/manifest.ts';
import { validateSource, validateSourceHandle, type SourceInfo } from '../sources/index.ts';
import { ErrorCode, PkgForgeError, isPkgForgeError } from '../util/errors.ts';
import { childPath, fsyncDir, fsyncDirShared, removeTree } from '../util/fs-safe.ts';
import { copyAndHash, hashFile } from '../util/hash.ts';
import { asSpaceProblem, type AcceptedSpace } from './space.ts';

/** Staging directories in accepted start with this; a pass removes any left by a crash. */
export const STAGING_PREFIX = '.staging-';

/**
 * Checks what can be checked without copying, so a job the farm will refuse costs no copy: the
 * manifest's sizes against the limits, then each package: there, a regular file with no other
 * links, of the manifest's size (as the opened file says), and a package by its header (an RPM's
 * lead and headers, a few KiB however large the file).
 */
export async function checkJobFiles(
  dir: string,
  manifest: Manifest,
  limits: SubmissionLimits = DEFAULT_SUBMISSION_LIMITS,
): Promise<void> {
  const tooLarge = jobSizeProblem(manifest.packages.flatMap(packageFiles), limits);
  if (tooLarge) throw new JobProblem(tooLarge, false);
  for (const p of manifest.packages) {
    const fh = await openPackage(dir, p);
    try {
      checkParts(p, await validateSourceHandle(p.type, p.file, fh));
    } catch (err) {
      if (isPkgForgeError(err)) throw new JobProblem(err.message, false);
      throw err;
    } finally {
      await fh.close();
    }
    for (const part of p.parts ?? []) await (await openPackage(dir, part)).close();
  }
}

/**
 * The parts the manifest gives a package must be exactly those the package lists (a `.dsc`'s
 * files, with their sizes and SHA-256): a manifest cannot leave one out, add one, or change one.
 */
function checkParts(p: PackageEntry, info: SourceInfo): void {
  const key = (x: PackagePart) => `${x.file}\0${x.size}\0${x.sha256sum}`;
  const listed = info.parts.map(key).sort();
  const given = (p.parts ?? []).map(key).sort();
  if (listed.length !== given.length || listed.some((k, i) => k !== given[i]))
    throw new JobProblem(
      `${p.file}: the manifest's files for it (${(p.parts ?? []).map((x) => x.file).join(', ') || 'none'}) are not the ones it lists (${info.parts.map((x) => x.file).join(', ') || 'none'}) with their sizes and SHA-256`,
      false,
    );
}

/**
 * Opens a package in incoming without following links; it must be a single-link regular file of
 * the manifest's size, checked on the opened file (what is read is what was checked).
 */
async function openPackage(dir: string, p: { file: string; size: number }): Promise<FileHandle> {
  const path = childPath(dir, p.file);
  // lstat first: opening a device or a FIFO could have effects of its own.
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!st) throw new JobProblem(`${p.file}: the file has not arrived`, true);
  checkPackageFile(p, st);
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new JobProblem(`${p.file}: is a symbolic link; only regular files are accepted`, false);
    if (code === 'ENOENT') throw new JobProblem(`${p.file}: the file has not arrived`, true);
    throw err;
  }
  try {
    checkPackageFile(p, await fh.stat());
    return fh;
  } catch (err) {
    await fh.close();
    throw err;
  }
}

function checkPackageFile(p: { file: string; size: number }, st: Stats): void {
  if (st.isSymbolicLink())
    throw new JobProblem(`${p.file}: is a symbolic link; only regular files are accepted`, false);
  if (!st.isFile()) throw new JobProblem(`${p.file}: is not a regular file`, false);
  if (st.nlink > 1)
    throw new JobProblem(`${p.file}: has ${st.nlink} hard links; only files with a single link are accepted`, false);
  if (st.size < p.size)
    throw new JobProblem(`${p.file}: is ${st.size} bytes, the manifest says ${p.size} (still arriving?)`, true);
  if (st.size > p.size)
    throw new JobProblem(`${p.file}: is ${st.size} bytes, larger than the ${p.size} bytes the manifest says`, false);
}

export interface StagedJob {
  staging: string;
  sources: SourceInfo[];
}

export interface StageOptions {
  /** A keyring every .dsc must be signed by (the bucket's `dsc_keyrings` entry), or none. */
  keyring?: string | null;
  /** Free space in accepted: each copy waits (a SpaceProblem) unless it fits with the reserve. */
  space?: AcceptedSpace;
  onProgress?: (bytes: number) => void;
}

/**
 * Stage 3, validation, done on a private copy: each package is streamed from incoming into a
 * staging directory inside accepted, its sha1 and sha256 (when the manifest has one) computed on
 * the way and compared with the manifest, and its header
 * validated from the copy, so what is validated is exactly what will be trusted. Files are opened
 * without following links and must still be single-link regular files of the manifest's size; no
 * more than that size is copied, however the file grows. A disk that fills up is a SpaceProblem.
 */
export async function stageJob(
  dir: string,
  accepted: string,
  manifest: Manifest,
  options: StageOptions = {},
): Promise<StagedJob> {
  const staging = join(accepted, `${STAGING_PREFIX}${manifest.id}-${randomBytes(4).toString('hex')}`);
  let current = `the job's directory in accepted`;
  try {
    await mkdir(staging, { mode: 0o755 });
    const sources: SourceInfo[] = [];
    let copied = 0;
    const copy = async (f: Copied) => {
      current = f.file;
      const claim = await options.space?.claim(f.file, f.size);
      try {
        await copyVerified(dir, join(staging, f.file), f, (n) => {
          claim?.wrote(n);
          options.onProgress?.(copied + n);
        });
      } finally {
        claim?.release();
      }
      copied += f.size;
    };
    for (const p of manifest.packages) {
      await copy(p);
      for (const part of p.parts ?? []) await copy({ ...part, sha1sum: undefined });
      try {
        const info = await validateSource(p.type, join(staging, p.file));
        checkParts(p, info);
        if (p.type === 'DSC' && options.keyring)
          await checkSignature(join(staging, p.file), manifest.bucket, options.keyring);
        sources.push(info);
      } catch (err) {
        if (isPkgForgeError(err)) throw new JobProblem(err.message, false);
        throw err;
      }
    }
    return { staging, sources };
  } catch (err) {
    await removeTree(staging);
    throw asSpaceProblem(err, current) ?? err;
  }
}

/** A file to copy into accepted with the checksums the manifest gives it (a part has only its SHA-256). */
type Copied = { file: string; size: number; sha1sum?: string | undefined; sha256sum?: string | undefined };

/**
 * A `.dsc` into a bucket with a keyring must carry a good signature by one of its keys, checked
 * with gpgv on the accepted copy (what is verified is what will be built).
 */
async function checkSignature(dsc: string, bucket: string, keyring: string): Promise<void> {
  const file = basename(dsc);
  const r = await verifySignature(dsc, keyring);
  if (r === null) return;
  throw new JobProblem(`${file}: bucket ${bucket} takes only .dsc files signed by a key in ${keyring}: ${r}`, false);
}

async function copyVerified(dir: string, to: string, p: Copied, onProgress: (n: number) => void): Promise<void> {
  const fh = await openPackage(dir, p);
  // Every checksum the manifest gives is computed on the bytes as they are written to the copy,
  // in one read of the data: what is checked is exactly what is kept. The copy is flushed before
  // it is closed, so the rename that accepts it makes it durable.
  const algorithms = [...(p.sha1sum ? (['sha1'] as const) : []), ...(p.sha256sum ? (['sha256'] as const) : [])];
  const copied = await copyAndHash(fh, to, algorithms, onProgress, { maxBytes: p.size, size: p.size });
  if (copied.size !== p.size)
    throw new JobProblem(
      `${p.file}: read ${copied.size} bytes, the manifest says ${p.size}${copied.size < p.size ? ' (still arriving?)' : ' (it grew while being copied)'}`,
      copied.size < p.size,
    );
  for (const a of algorithms)
    if (copied[a] !== (a === 'sha1' ? p.sha1sum : p.sha256sum))
      // Soft: a file still being written may yet match.
      throw new JobProblem(`${p.file}: the ${a}sum does not match the manifest`, true);
}

/**
 * Stage 4, transfer: the manifest with the submitter and submission time is written into the
 * staging directory (already verified by stageJob), and the staging directory is renamed to
 * accepted/<id> in one step, so accepted/<id> either does not exist or is complete and verified.
 */
export async function commitStagedJob(staged: StagedJob, accepted: string, manifest: Manifest): Promise<string> {
  try {
    // The staging directory is private to this processor, so the manifest needs no temporary name.
    const fh = await open(join(staged.staging, MANIFEST_FILE), 'wx', 0o644);
    try {
      await fh.writeFile(serialiseManifest(manifest));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsyncDir(staged.staging);
    const target = childPath(accepted, manifest.id);
    if (await lstat(target).catch(() => null)) {
      throw new PkgForgeError(ErrorCode.transfer, `Job ${manifest.id}: accepted/${manifest.id} already exists`);
    }
    await rename(staged.staging, target);
    await fsyncDirShared(accepted);
    return target;
  } catch (err) {
    await removeTree(staged.staging);
    throw err;
  }
}

/** Re-reads every package of a copy and compares it with the manifest. */
export async function verifyCopy(dir: string, manifest: Manifest): Promise<void> {
  const files = manifest.packages.flatMap((p) => [p, ...(p.parts ?? []).map((x) => ({ ...x, sha1sum: '' }))]);
  for (const p of files) {
    const path = childPath(dir, p.file);
    const algorithm = p.sha256sum ? 'sha256' : 'sha1';
    const d = await hashFile(path, [algorithm]).catch((err: Error) => {
      throw new PkgForgeError(
        ErrorCode.transfer,
        `Job ${manifest.id}: cannot read back the copy of ${p.file}: ${err.message}`,
      );
    });
    if (d.size !== p.size || d[algorithm] !== (p.sha256sum ?? p.sha1sum)) {
      throw new PkgForgeError(
        ErrorCode.checksum,
        `Job ${manifest.id}: the copy of ${p.file} in accepted does not match the manifest`,
      );
    }
  }
}

/**
 * Removes staging directories a killed processor left in accepted, and the leftovers of lock
 * hand-overs. Call only while holding the processor lock.
 */
export async function removeStaleStaging(accepted: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(accepted)) {
    if (name.startsWith(STAGING_PREFIX) || /^\.incoming\.lock\.(dead|gone)-/.test(name)) {
      await removeTree(join(accepted, name));
      removed.push(name);
    }
  }
  return removed;
}
