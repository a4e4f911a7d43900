import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';
import type { JobStatus, TaskStatus } from '../core/terms.ts';
import type { PackageFamily } from '../core/terms.ts';

/**
 * The registry's tables as Kysely sees them. Times are epoch milliseconds (bigint), booleans are
 * 0/1 integers and lists are JSON text, so both databases return the same values.
 */
export interface Database {
  platforms: PlatformTable;
  jobs: JobTable;
  job_packages: JobPackageTable;
  tasks: TaskTable;
  builders: BuilderTable;
  attempts: AttemptTable;
  tokens: TokenTable;
  refused_entries: RefusedEntryTable;
}

/** An incoming entry refused before a job record existed for it. */
export interface RefusedEntryTable {
  id: Id;
  /** The directory's name, printable. */
  entry: string;
  /** Which directory it was (`dev:inode:birth`): recorded once however often it is seen. */
  entry_key: string;
  submitter: string | null;
  reason: string;
  refused_at: Millis;
}

export interface TokenTable {
  id: Id;
  user: string;
  /** sha256 of the token, hex. */
  hash: string;
  created_at: Millis;
  last_used_at: Millis | null;
  revoked_at: Millis | null;
  /** Set for a builder token: the only builder it acts for (`user` then holds the builder's name). */
  builder_id: number | null;
}

type Id = Generated<number>;
type Millis = ColumnType<number, number, number>;

export interface PlatformTable {
  id: Id;
  name: string;
  arch: string;
  active: number;
  auto: number;
  /** `rpm` or `deb`: what the platform's builders build (core/terms.ts). */
  family: PackageFamily;
  created_at: Millis;
}

export interface JobTable {
  id: Id;
  /** The job id users see (the original's `uuid`). */
  uuid: string;
  bucket: string;
  submitter: string | null;
  status: JobStatus;
  /** Why the job is `invalid` or `fail`, for a person to read. */
  reason: string | null;
  size: number;
  /** JSON arrays of the job's filters and report addresses. */
  platforms: string;
  archs: string;
  report: string;
  /** Submission time (the incoming directory's change time), epoch ms. */
  submitted_at: Millis | null;
  /** The incoming directory the job came from, so a processor restarted after a crash can resume it. */
  incoming_entry: string | null;
  /** `dev:inode` of that directory. */
  incoming_inode: string | null;
  /** How many tasks the job has, and how many ended each way (registry/job-counters.ts keeps them). */
  tasks_total: Generated<number>;
  tasks_success: Generated<number>;
  tasks_fail: Generated<number>;
  tasks_cancelled: Generated<number>;
  created_at: Millis;
  modified_at: Millis;
}

export interface JobPackageTable {
  id: Id;
  job_id: number;
  /** Build order, from 0. */
  position: number;
  file: string;
  type: string;
  size: number;
  sha1sum: string;
  sha256sum: string | null;
  name: string | null;
  version: string | null;
  release: string | null;
}

export interface TaskTable {
  id: Id;
  job_id: number;
  platform_id: number;
  status: TaskStatus;
  reason: string | null;
  /** The queue ordering key: the job's submission time, kept when a task is requeued so it keeps its place. */
  queued_at: Millis;
  /** The number of the latest attempt (0 before the first claim); fences late results. */
  attempt: number;
  /** The builder holding the task while it is `building`. */
  builder_id: number | null;
  /** When the holder's lease runs out unless its heartbeat renews it, epoch ms. */
  lease_expires_at: Millis | null;
  /**
   * The attempt whose build the registry accepted for publishing (null until one is). A claim of a
   * task that has one publishes that attempt's kept products instead of building again, so a task
   * is published from one build only, whatever happens to the builder after acceptance.
   */
  accepted_attempt: number | null;
  created_at: Millis;
  modified_at: Millis;
}

export interface BuilderTable {
  id: Id;
  name: string;
  platform_id: number;
  current_task_id: number | null;
  host: string | null;
  last_heartbeat_at: Millis | null;
  /** Why the daemon cannot build (its preflight failed), or null. */
  unable_reason: string | null;
  sandbox: string | null;
  /** When its daemon last stopped cleanly; null while one runs (or before any ran). */
  stopped_at: Millis | null;
  created_at: Millis;
  modified_at: Millis;
}

export interface AttemptTable {
  id: Id;
  task_id: number;
  number: number;
  builder: string;
  host: string;
  started_at: Millis;
  ended_at: Millis | null;
  outcome: string | null;
  reason: string | null;
  /** Where this attempt's logs are, relative to the results directory. */
  log_dir: string | null;
}

export type JobRow = Selectable<JobTable>;
export type NewJob = Insertable<JobTable>;
export type PlatformRow = Selectable<PlatformTable>;
export type TaskRow = Selectable<TaskTable>;
export type BuilderRow = Selectable<BuilderTable>;
export type JobPackageRow = Selectable<JobPackageTable>;
