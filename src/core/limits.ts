import { printable } from './names.ts';
import { formatSize, parseSize } from './sizes.ts';

/**
 * What one submission may make the farm do. A manifest is hostile input: without bounds, one
 * declaring a 1 TiB package (a sparse file) has the incoming processor copy zeros until the disk
 * is full. The limits are far above any real source package (the largest Fedora SRPMs are 1–2 GB).
 */
export interface SubmissionLimits {
  /** The largest source package (`max_package_size`). */
  maxPackageSize: number;
  /** The largest total of a job's packages (`max_job_size`). */
  maxJobSize: number;
}

const GiB = 1024 ** 3;

export const DEFAULT_SUBMISSION_LIMITS: SubmissionLimits = { maxPackageSize: 8 * GiB, maxJobSize: 16 * GiB };

/** Free space the incoming processor leaves in the accepted file system: bytes, or a percentage of its size. */
export type SpaceReserve = { bytes: number } | { percent: number };

export const DEFAULT_ACCEPTED_RESERVE: SpaceReserve = { bytes: GiB };

/** What one build may use. */
export interface BuildLimits {
  /** Bytes of memory: the address space of each process (RLIMIT_AS) and the resident total of the build. */
  memory: number;
  /** Processes at once. */
  processes: number;
  /** Bytes in the build's work directory (and the largest file it may write). */
  workdir: number;
  /** Bytes in each of its private /tmp, /var/tmp and /dev/shm. */
  tmpfs: number;
  /** Bytes of one product taken from the build. */
  product: number;
}

/** Build limits a normal package never meets. */
export const DEFAULT_BUILD_LIMITS: Readonly<BuildLimits> = Object.freeze({
  memory: 8 * GiB,
  processes: 4096,
  workdir: 20 * GiB,
  tmpfs: 4 * GiB,
  product: 4 * GiB,
});

/** `accepted_reserve` as configured: a size (`1G`, bytes) or a percentage (`5%`). */
export function parseReserve(value: number | string): SpaceReserve {
  if (typeof value === 'string' && value.trim().endsWith('%')) {
    const percent = Number(value.trim().slice(0, -1));
    if (!Number.isFinite(percent) || percent < 0 || percent > 100)
      throw new Error(`'${value}' is not a percentage from 0% to 100%`);
    return { percent };
  }
  return { bytes: parseSize(value) };
}

export function reserveBytes(reserve: SpaceReserve, fileSystemBytes: number): number {
  return 'bytes' in reserve ? reserve.bytes : Math.ceil((fileSystemBytes * reserve.percent) / 100);
}

export function describeReserve(reserve: SpaceReserve): string {
  return 'bytes' in reserve ? formatSize(reserve.bytes) : `${reserve.percent}% of the file system`;
}

const bytes = (n: number) => `${n} bytes (${formatSize(n)})`;

/** Why a package of this size is refused, or null. */
export function packageSizeProblem(file: string, size: number, limits: SubmissionLimits): string | null {
  if (size <= limits.maxPackageSize) return null;
  return `${printable(file)}: is ${bytes(size)}, more than the farm accepts for one package (max_package_size: ${formatSize(limits.maxPackageSize)})`;
}

/** Why a job of these packages is refused for its size (one package, or all together), or null. */
export function jobSizeProblem(
  packages: readonly { file: string; size: number }[],
  limits: SubmissionLimits,
): string | null {
  for (const p of packages) {
    const problem = packageSizeProblem(p.file, p.size, limits);
    if (problem) return problem;
  }
  const total = packages.reduce((sum, p) => sum + p.size, 0);
  if (total <= limits.maxJobSize) return null;
  return `its ${packages.length} ${packages.length === 1 ? 'file is' : 'files are'} ${bytes(total)} together, more than the farm accepts for one job (max_job_size: ${formatSize(limits.maxJobSize)})`;
}

/** The accepted file system, as `statfs` describes it. */
export interface FreeSpace {
  /** Bytes an unprivileged writer may still use. */
  available: number;
  /** The file system's size. */
  total: number;
}

/**
 * Why a copy of `size` bytes must wait, or null when it fits: it must leave the reserve free, after
 * the bytes other copies in flight have yet to write (`pending`).
 */
export function spaceProblem(
  file: string,
  size: number,
  space: FreeSpace,
  pending: number,
  reserve: SpaceReserve,
): string | null {
  const kept = reserveBytes(reserve, space.total);
  const free = space.available - pending;
  if (size + kept <= free) return null;
  return (
    `waiting for space in the accepted directory: ${printable(file)} needs ${formatSize(size)} and ${describeReserve(reserve)} is kept free (accepted_reserve), ` +
    `but only ${formatSize(Math.max(0, free))} is free${pending > 0 ? ' after the copies in progress' : ''}; the job is kept and taken once there is room`
  );
}
