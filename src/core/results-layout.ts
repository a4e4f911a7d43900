import { posix } from 'node:path';

/**
 * Where a task's results and an attempt's files live, relative to the results directory:
 * `<job>/<platform>-<arch>/` (the current results) and `…/attempt-<n>/` (one attempt's own).
 * Each part must be one plain path component, so no path built here leaves the results directory.
 */
export function taskResultsPath(jobId: string, platform: string, arch: string): string {
  for (const part of [jobId, platform, arch]) {
    if (part.length === 0 || part.includes('/') || part.includes('\0') || part === '.' || part === '..')
      throw new Error(`'${part}' cannot be part of a results path`);
  }
  return posix.join(jobId, `${platform}-${arch}`);
}

export function attemptPath(jobId: string, platform: string, arch: string, attempt: number): string {
  if (!Number.isInteger(attempt) || attempt < 1) throw new Error(`attempt ${attempt} has no results directory`);
  return posix.join(taskResultsPath(jobId, platform, arch), `attempt-${attempt}`);
}
