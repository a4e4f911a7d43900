import { printable } from './names.ts';
import { formatSize } from './sizes.ts';

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

const bytes = (n: number) => `${n} bytes (${formatSize(n)})`;

/** Why a package of this size is refused, or null. */
export function packageSizeProblem(file: string, size: number, limits: SubmissionLimits): string | null {
  if (size <= limits.maxPackageSize) return null;
  return `${printable(file)}: is ${bytes(size)}, more than the farm accepts for one package (max_package_size: ${formatSize(limits.maxPackageSize)})`;
}

/** Why a job of these packages is refused for its size (one package, or all together), or null. */
export function jobSizeProblem(packages: readonly { file: string; size: number }[], limits: SubmissionLimits): string | null {
  for (const p of packages) {
    const problem = packageSizeProblem(p.file, p.size, limits);
    if (problem) return problem;
  }
  const total = packages.reduce((sum, p) => sum + p.size, 0);
  if (total <= limits.maxJobSize) return null;
  return `its ${packages.length} packages are ${bytes(total)} together, more than the farm accepts for one job (max_job_size: ${formatSize(limits.maxJobSize)})`;
}
