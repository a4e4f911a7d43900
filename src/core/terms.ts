/**
 * The words of PkgForge, defined once.
 *
 * - job: what a user submits: an id, a bucket, platform and arch filters, report addresses and
 *   ordered source packages. Its manifest is `build.yml` inside the job directory.
 * - source package: one file of a job (`SRPM` today), with its size and checksums.
 * - bucket: the repository a job's binaries are published into (`devel`, `lcfg`, …).
 * - platform: a distribution release and architecture pair (`el9`/`x86_64`), `active` and `auto`.
 * - task: a job registered for one platform/arch.
 * - builder: a named build daemon serving exactly one platform.
 * - attempt: one claim of a task by a builder.
 * - registry: the database of jobs, tasks, platforms, builders and attempts.
 * - incoming / accepted / results: the user drop box, the trusted copies, the build outputs.
 */

/** Job states, with the names users of the original PkgForge know. */
export const JobStatus = {
  incoming: 'incoming',
  valid: 'valid',
  invalid: 'invalid',
  accepted: 'accepted',
  registered: 'registered',
  partialFail: 'partial fail',
  fail: 'fail',
  partialSuccess: 'partial success',
  success: 'success',
  cancelled: 'cancelled',
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];
export const JOB_STATUSES: readonly JobStatus[] = Object.values(JobStatus);

/** The job states in which the incoming processor still owns the job (it may resume it after a crash). */
export const IN_FLIGHT_JOB_STATUSES: readonly JobStatus[] = [JobStatus.incoming, JobStatus.valid, JobStatus.accepted];

export const TaskStatus = {
  needsBuild: 'needs build',
  building: 'building',
  fail: 'fail',
  success: 'success',
  cancelled: 'cancelled',
} as const;
export type TaskStatus = (typeof TaskStatus)[keyof typeof TaskStatus];
export const TASK_STATUSES: readonly TaskStatus[] = Object.values(TaskStatus);

export function isJobStatus(value: string): value is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(value);
}

export function isTaskStatus(value: string): value is TaskStatus {
  return (TASK_STATUSES as readonly string[]).includes(value);
}

/** A platform row as the target selection sees it. */
export interface PlatformTarget {
  name: string;
  arch: string;
  auto: boolean;
  family: PackageFamily;
}

/** The source package types this farm can validate. */
export const SOURCE_TYPES = ['SRPM', 'DSC'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

/**
 * What a platform's packages are: `rpm` (built from SRPMs, published as yum repositories) or `deb`
 * (built from `.dsc`s, published as APT repositories). A job's tasks go only to platforms of its
 * sources' family.
 */
export const PACKAGE_FAMILIES = ['rpm', 'deb'] as const;
export type PackageFamily = (typeof PACKAGE_FAMILIES)[number];

/** The family a source type builds into. */
export function familyOfSource(type: SourceType): PackageFamily {
  switch (type) {
    case 'SRPM':
      return 'rpm';
    case 'DSC':
      return 'deb';
  }
}

/** The family a platform's name says (`deb12`, `ubuntu24` are Debian's; `el9`, `f40` and others RPM's). */
export function familyOfPlatformName(name: string): PackageFamily {
  return /^(deb|debian|ubuntu)[0-9]/i.test(name) ? 'deb' : 'rpm';
}

/** The family a builder command builds (rpmbuild and mock: RPMs). */
export function familyOfBuilder(builder: string): PackageFamily {
  return builder === 'sbuild' ? 'deb' : 'rpm';
}
