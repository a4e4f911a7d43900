import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, rename, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import {
  MANIFEST_FILE,
  serialiseManifest,
  type Manifest,
  type PackageEntry,
  type PackagePart,
} from '../core/manifest.ts';
import { fileNameProblem, fileNamesProblem, printable } from '../core/names.ts';
import { sourceTypeOf, validateSource } from './index.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { childPath, fsyncDir, fsyncFile, removeTree, writeFileAtomic } from '../util/fs-safe.ts';
import { copyAndHash } from '../util/hash.ts';

/**
 * Refuses package names one job cannot have: unsafe (a path, invisible or text-direction
 * characters…), of no supported type, or the same as another's, also once Unicode is normalised.
 */
export function assertPackageNames(names: readonly string[]): void {
  assertFileNames(names);
  for (const name of names) {
    if (!sourceTypeOf(name))
      throw new PkgForgeError(
        ErrorCode.sourcePackage,
        `Unsupported package type for ${printable(name)}, is it really a source package?`,
      );
  }
}

/** Refuses file names one job cannot have (packages and their parts alike): unsafe, or twins. */
export function assertFileNames(names: readonly string[]): void {
  for (const name of names) {
    const problem = fileNameProblem(name);
    if (problem) throw new PkgForgeError(ErrorCode.unsafePath, `${printable(name)}: ${problem}`);
  }
  const twins = fileNamesProblem(names);
  if (twins) throw new PkgForgeError(ErrorCode.unsafePath, twins);
}

/** Writes a stream to a new file, hashing it, refusing it once it passes `maxBytes`. */
async function streamIn(
  stream: Readable,
  path: string,
  maxBytes: number,
  tooLarge: () => PkgForgeError,
): Promise<{ size: number; sha1: string; sha256: string }> {
  const sha1 = createHash('sha1');
  const sha256 = createHash('sha256');
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _e, done) {
      size += chunk.length;
      if (size > maxBytes) return done(tooLarge());
      sha1.update(chunk);
      sha256.update(chunk);
      done(null, chunk);
    },
  });
  await pipeline(stream, meter, createWriteStream(path, { flags: 'wx', mode: 0o644 }));
  await fsyncFile(path);
  return { size, sha1: sha1.digest('hex'), sha256: sha256.digest('hex') };
}

/**
 * A job directory being written into incoming: under a dot-name the processor ignores, files
 * added one by one (each hashed as it streams), the manifest written last, and the whole directory
 * renamed into place in one step. Used by `pkgforge submit` and by uploads over HTTP.
 */
export class JobDirWriter {
  private readonly packages: PackageEntry[] = [];
  /** Files packages bring with them (a `.dsc`'s tarballs), by name. */
  private readonly parts = new Map<string, PackagePart>();
  private constructor(
    readonly target: string,
    readonly id: string,
    private readonly partial: string,
  ) {}

  static async create(target: string, id: string): Promise<JobDirWriter> {
    const st = await stat(target).catch(() => null);
    if (!st?.isDirectory())
      throw new PkgForgeError(ErrorCode.directory, `Cannot find build job submission directory ${target}`);
    if (await lstat(childPath(target, id)).catch(() => null))
      throw new PkgForgeError(ErrorCode.jobId, `Job ${id} is already in ${target}; choose another id`);
    const partial = join(target, `.${id}.partial-${randomBytes(4).toString('hex')}`);
    await mkdir(partial, { mode: 0o755 });
    return new JobDirWriter(target, id, partial);
  }

  get entries(): readonly PackageEntry[] {
    return this.packages;
  }

  /** Copies a local source package in. */
  async addFile(path: string, onProgress?: (bytes: number) => void): Promise<PackageEntry> {
    const name = this.checkName(basename(path));
    const d = await copyAndHash(path, join(this.partial, name), ['sha1', 'sha256'], onProgress);
    return this.record(name, d.size, d.sha1!, d.sha256!);
  }

  /**
   * Copies in a file a package lists (a `.dsc`'s tarball), checking the copy against the size and
   * SHA-256 the package gives for it; `owner` (the package) names it in messages.
   */
  async addPart(
    path: string,
    expected: PackagePart,
    owner: string,
    onProgress?: (bytes: number) => void,
  ): Promise<PackagePart> {
    const name = expected.file;
    assertFileNames([...this.names(), name]);
    const d = await copyAndHash(path, join(this.partial, name), ['sha256'], onProgress, { maxBytes: expected.size });
    if (d.size !== expected.size || d.sha256 !== expected.sha256sum)
      throw new PkgForgeError(
        ErrorCode.checksum,
        `${printable(owner)}: ${printable(name)} is ${d.size} bytes with SHA-256 ${d.sha256}, and ${printable(owner)} lists ${expected.size} bytes with SHA-256 ${expected.sha256sum}`,
      );
    const part = { file: name, size: d.size, sha256sum: d.sha256! };
    this.parts.set(name, part);
    return part;
  }

  /** A part added before, by name. */
  part(name: string): PackagePart | undefined {
    return this.parts.get(name);
  }

  /**
   * Streams an uploaded source package in, refusing it once it passes `maxBytes`, and validates it.
   * Returns its entry and the files it lists (a `.dsc`'s), which must follow as parts.
   */
  async addStream(
    fileName: string,
    stream: Readable,
    maxBytes: number,
  ): Promise<{ entry: PackageEntry; lists: PackagePart[] }> {
    const name = this.checkName(fileName);
    const path = join(this.partial, name);
    const d = await streamIn(
      stream,
      path,
      maxBytes,
      () =>
        new PkgForgeError(
          ErrorCode.tooLarge,
          `${printable(name)} is larger than the upload limit of ${maxBytes} bytes`,
        ),
    );
    const info = await validateSource(sourceTypeOf(name)!, path);
    return { entry: this.record(name, d.size, d.sha1, d.sha256), lists: info.parts };
  }

  /**
   * Streams in an uploaded file that a package listed (`expected`, from `owner`), checking its
   * size and SHA-256 as it arrives: a byte past the listed size stops it.
   */
  async addPartStream(stream: Readable, expected: PackagePart, owner: string): Promise<PackagePart> {
    assertFileNames([...this.names(), expected.file]);
    const path = join(this.partial, expected.file);
    const mismatch = () =>
      new PkgForgeError(
        ErrorCode.checksum,
        `${printable(owner)}: the uploaded ${printable(expected.file)} does not have the size and SHA-256 ${printable(owner)} lists`,
      );
    const d = await streamIn(stream, path, expected.size, mismatch);
    if (d.size !== expected.size || d.sha256 !== expected.sha256sum) throw mismatch();
    const part = { file: expected.file, size: d.size, sha256sum: d.sha256 };
    this.parts.set(expected.file, part);
    return part;
  }

  /** Writes the manifest and puts the job in place. The manifest must list exactly the files added. */
  async finish(manifest: Manifest): Promise<void> {
    await writeFileAtomic(join(this.partial, MANIFEST_FILE), serialiseManifest(manifest));
    // Readable by the incoming processor whatever the submitter's umask: with 077 the job would be
    // a directory the processor cannot open.
    for (const name of [...this.names(), MANIFEST_FILE]) await chmod(join(this.partial, name), 0o644);
    await chmod(this.partial, 0o755);
    const finalDir = childPath(this.target, this.id);
    if (await lstat(finalDir).catch(() => null))
      throw new PkgForgeError(ErrorCode.jobId, `Job ${this.id} is already in ${this.target}; choose another id`);
    await rename(this.partial, finalDir);
    await fsyncDir(this.target);
  }

  async abandon(): Promise<void> {
    await removeTree(this.partial);
  }

  private names(): string[] {
    return [...this.packages.map((p) => p.file), ...this.parts.keys()];
  }

  private checkName(name: string): string {
    assertPackageNames([name]);
    assertFileNames([...this.names(), name]);
    return name;
  }

  private record(file: string, size: number, sha1sum: string, sha256sum: string): PackageEntry {
    const entry: PackageEntry = { file, type: sourceTypeOf(file)!, size, sha1sum, sha256sum };
    this.packages.push(entry);
    return entry;
  }
}
