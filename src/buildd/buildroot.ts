import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { parse, stringify } from 'yaml';
import { debianArch } from '../core/debian-arch.ts';
import { debianSuite, KNOWN_DEBIAN_PLATFORMS } from '../core/debian-suites.ts';
import { formatSize } from '../core/sizes.ts';
import { captureCommand, runCommand } from '../util/child.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { writeFileAtomic } from '../util/fs-safe.ts';

/**
 * A Debian platform's build root: a minimal system with build-essential (mmdebstrap's `buildd`
 * variant), kept as a compressed tarball, `<buildroots>/<platform>-<debian arch>.tar.zst`, that
 * sbuild unpacks afresh for every build (its unshare mode). Beside it, `<name>.yml` says what it
 * was made from and when.
 */
export interface BuildRoot {
  platform: string;
  arch: string;
  suite: string;
  mirror: string;
  /** When it was made, epoch ms. */
  created: number;
  bytes: number;
  /** The tarball. */
  file: string;
}

const base = (platform: string, arch: string) => `${platform}-${debianArch(arch)}`;

/** Where the build root of a platform and arch is, made or not. */
export function buildRootFile(dir: string, platform: string, arch: string): string {
  return join(dir, `${base(platform, arch)}.tar.zst`);
}

/** The build root of a platform and arch, or null when none has been made. */
export async function findBuildRoot(dir: string, platform: string, arch: string): Promise<BuildRoot | null> {
  const file = buildRootFile(dir, platform, arch);
  const st = await stat(file).catch(() => null);
  if (!st?.isFile()) return null;
  const about = await readFile(join(dir, `${base(platform, arch)}.yml`), 'utf8')
    .then((t) => parse(t) as Partial<BuildRoot> | null)
    .catch(() => null);
  return {
    platform,
    arch,
    suite: about?.suite ?? debianSuite(platform) ?? '?',
    mirror: about?.mirror ?? '?',
    created: about?.created ?? st.mtimeMs,
    bytes: st.size,
    file,
  };
}

export interface MakeBuildRootOptions {
  dir: string;
  platform: string;
  arch: string;
  mirror: string;
  /** mmdebstrap's progress goes here. */
  output: Writable;
  signal?: AbortSignal;
}

/** mmdebstrap's arguments for a build root: all that decides what it holds, with the day's mirror. */
export function mmdebstrapArgs(suite: string, arch: string, mirror: string, output: string): string[] {
  return ['--variant=buildd', `--architectures=${debianArch(arch)}`, '--components=main', suite, output, mirror];
}

/**
 * Makes (or remakes) a platform's build root with mmdebstrap and puts it in place atomically: a
 * builder that starts a build meanwhile unpacks the old one or the new one, never half of one.
 * The tarball is readable by everyone: the build user unpacks it.
 */
export async function makeBuildRoot(o: MakeBuildRootOptions): Promise<BuildRoot> {
  const suite = debianSuite(o.platform);
  if (!suite)
    throw new PkgForgeError(
      ErrorCode.config,
      `Cannot tell which Debian release the platform '${o.platform}' is: build roots are made for ${KNOWN_DEBIAN_PLATFORMS.join(', ')}`,
    );
  await mkdir(o.dir, { recursive: true, mode: 0o755 });
  const file = buildRootFile(o.dir, o.platform, o.arch);
  // mmdebstrap chooses the format by the name's ending, so the partial name keeps it.
  const partial = join(o.dir, `.${base(o.platform, o.arch)}.partial-${randomBytes(4).toString('hex')}.tar.zst`);
  const started = Date.now();
  const r = await runCommand('mmdebstrap', mmdebstrapArgs(suite, o.arch, o.mirror, partial), {
    output: o.output,
    signal: o.signal,
    timeoutMs: 60 * 60_000,
  });
  if (r.error || r.code !== 0) {
    await unlink(partial).catch(() => {});
    throw new PkgForgeError(
      ErrorCode.buildRoot,
      `mmdebstrap could not make the build root of ${o.platform}/${o.arch} (${suite} from ${o.mirror}): ${r.error?.message ?? (r.timedOut ? 'timed out' : `exit code ${r.code}`)}; its output above says why`,
    );
  }
  await chmod(partial, 0o644);
  const bytes = (await stat(partial)).size;
  const about = { platform: o.platform, arch: o.arch, suite, mirror: o.mirror, created: started, bytes };
  await writeFileAtomic(join(o.dir, `${base(o.platform, o.arch)}.yml`), stringify(about));
  await rename(partial, file);
  return { ...about, file };
}

/** One line about a build root, for the terminal. */
export function describeBuildRoot(b: BuildRoot): string {
  return `${b.platform}/${b.arch}: ${b.suite} from ${b.mirror}, ${formatSize(b.bytes)}, made ${new Date(b.created).toISOString()} (${b.file})`;
}

/** The version of mmdebstrap, for a cache key or a message; null when it is not installed. */
export async function mmdebstrapVersion(): Promise<string | null> {
  const r = await captureCommand('mmdebstrap', ['--version']).catch(() => null);
  return r && r.code === 0 ? r.stdout.trim() : null;
}
