import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, serialiseManifest, type Manifest, type PackageEntry } from '../core/manifest.ts';
import { validateSource, type SourceInfo } from '../sources/index.ts';
import { ErrorCode, PkgForgeError, isPkgForgeError } from '../util/errors.ts';
import { childPath, fsyncDir, removeTree, writeFileAtomic } from '../util/fs-safe.ts';
import { copyAndHash, hashFile } from '../util/hash.ts';

/** Staging directories in accepted start with this; a pass removes any left by a crash. */
export const STAGING_PREFIX = '.staging-';

/**
 * A problem with a job's files. `soft` problems (a file not there yet, too short, a checksum that
 * does not match yet) may go away while the submitter is still copying; hard ones never will.
 */
export class JobFileProblem extends Error {
  constructor(
    message: string,
    readonly soft: boolean,
  ) {
    super(message);
  }
}

/**
 * Checks what can be checked without reading the files: each package is there, is a regular
 * file with no other links, and has the manifest's size.
 */
export async function checkJobFiles(dir: string, manifest: Manifest): Promise<void> {
  for (const p of manifest.packages) {
    const path = childPath(dir, p.file);
    const st = await lstat(path).catch(() => null);
    if (!st) throw new JobFileProblem(`${p.file}: the file has not arrived`, true);
    if (st.isSymbolicLink()) throw new JobFileProblem(`${p.file}: is a symbolic link; only regular files are accepted`, false);
    if (!st.isFile()) throw new JobFileProblem(`${p.file}: is not a regular file`, false);
    if (st.nlink > 1) throw new JobFileProblem(`${p.file}: has ${st.nlink} hard links; only files with a single link are accepted`, false);
    if (st.size < p.size) throw new JobFileProblem(`${p.file}: is ${st.size} bytes, the manifest says ${p.size} (still arriving?)`, true);
    if (st.size > p.size) throw new JobFileProblem(`${p.file}: is ${st.size} bytes, larger than the ${p.size} bytes the manifest says`, false);
  }
}

export interface StagedJob {
  staging: string;
  sources: SourceInfo[];
}

/**
 * Stage 3, validation, done on a private copy: each package is streamed from incoming into a
 * staging directory inside accepted, hashed on the way (sha1 and sha256 from one read), compared
 * with the manifest, and its header validated from the copy, so what is validated is exactly what
 * will be trusted. Files are opened without following links and must still be single-link regular files.
 */
export async function stageJob(dir: string, accepted: string, manifest: Manifest, onProgress?: (bytes: number) => void): Promise<StagedJob> {
  const staging = join(accepted, `${STAGING_PREFIX}${manifest.id}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging, { mode: 0o755 });
  try {
    const sources: SourceInfo[] = [];
    let copied = 0;
    for (const p of manifest.packages) {
      const to = join(staging, p.file);
      const digests = await copyVerified(childPath(dir, p.file), to, p, (n) => onProgress?.(copied + n));
      copied += digests.size;
      try {
        sources.push(await validateSource(p.type, to));
      } catch (err) {
        if (isPkgForgeError(err)) throw new JobFileProblem(err.message, false);
        throw err;
      }
    }
    return { staging, sources };
  } catch (err) {
    await removeTree(staging);
    throw err;
  }
}

async function copyVerified(from: string, to: string, p: PackageEntry, onProgress: (n: number) => void): Promise<{ size: number }> {
  let fh;
  try {
    fh = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new JobFileProblem(`${p.file}: is a symbolic link; only regular files are accepted`, false);
    if (code === 'ENOENT') throw new JobFileProblem(`${p.file}: the file has not arrived`, true);
    throw err;
  }
  const st = await fh.stat();
  if (!st.isFile() || st.nlink > 1) {
    await fh.close();
    throw new JobFileProblem(`${p.file}: is not a single-link regular file`, false);
  }
  const d = await copyAndHash(fh, to, p.sha256sum ? ['sha1', 'sha256'] : ['sha1'], onProgress);
  const size = d.size;
  if (size !== p.size) throw new JobFileProblem(`${p.file}: read ${size} bytes, the manifest says ${p.size} (still arriving?)`, size < p.size);
  if (d.sha1 !== p.sha1sum) throw new JobFileProblem(`${p.file}: the sha1sum does not match the manifest`, true);
  if (p.sha256sum && d.sha256 !== p.sha256sum) throw new JobFileProblem(`${p.file}: the sha256sum does not match the manifest`, true);
  return { size };
}

/**
 * Stage 4, transfer: the staged copies are read back and checked against the manifest once more
 * (the copy on disk is what builders will trust), the manifest with the submitter and submission
 * time is written atomically, and the staging directory is renamed to accepted/<id> in one step,
 * so accepted/<id> either does not exist or is complete and verified.
 */
export async function commitStagedJob(staged: StagedJob, accepted: string, manifest: Manifest): Promise<string> {
  try {
    await verifyCopy(staged.staging, manifest);
    await writeFileAtomic(join(staged.staging, MANIFEST_FILE), serialiseManifest(manifest));
    const target = childPath(accepted, manifest.id);
    if (await lstat(target).catch(() => null)) {
      throw new PkgForgeError(ErrorCode.transfer, `Job ${manifest.id}: accepted/${manifest.id} already exists`);
    }
    await rename(staged.staging, target);
    await fsyncDir(accepted);
    return target;
  } catch (err) {
    await removeTree(staged.staging);
    throw err;
  }
}

/** Re-reads every package of a copy and compares it with the manifest. */
export async function verifyCopy(dir: string, manifest: Manifest): Promise<void> {
  for (const p of manifest.packages) {
    const path = childPath(dir, p.file);
    const algorithms = p.sha256sum ? (['sha1', 'sha256'] as const) : (['sha1'] as const);
    const d = await hashFile(path, algorithms).catch((err: Error) => {
      throw new PkgForgeError(ErrorCode.transfer, `Job ${manifest.id}: cannot read back the copy of ${p.file}: ${err.message}`);
    });
    if (d.size !== p.size || d.sha1 !== p.sha1sum || (p.sha256sum && d.sha256 !== p.sha256sum)) {
      throw new PkgForgeError(ErrorCode.checksum, `Job ${manifest.id}: the copy of ${p.file} in accepted does not match the manifest`);
    }
  }
}

/** Removes staging directories a killed processor left in accepted. Call only while holding the processor lock. */
export async function removeStaleStaging(accepted: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(accepted)) {
    if (name.startsWith(STAGING_PREFIX)) {
      await removeTree(join(accepted, name));
      removed.push(name);
    }
  }
  return removed;
}
