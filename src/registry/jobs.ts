import type { Kysely } from 'kysely';
import { manifestFamily, type Manifest } from '../core/manifest.ts';
import { IN_FLIGHT_JOB_STATUSES, JobStatus, type PackageFamily, type SourceType, TaskStatus } from '../core/terms.ts';
import { jobFailureSummary } from '../core/build-failure.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import type { Database, JobPackageTable, JobRow } from './schema.ts';
import { writeTransaction, type Registry } from './registry.ts';
import { isUniqueViolation } from './unique-violation.ts';

/** A job as the registry knows it. */
export interface Job {
  id: string;
  bucket: string;
  submitter: string | null;
  status: JobStatus;
  reason: string | null;
  size: number;
  platforms: string[];
  archs: string[];
  report: string[];
  submittedAt: number | null;
  incomingEntry: string | null;
  incomingInode: string | null;
  createdAt: number;
  modifiedAt: number;
}

/** A job's source package as the registry keeps it (its table's row, without the keys). */
export type JobPackage = Omit<JobPackageTable, 'id' | 'job_id'>;

export interface JobTask {
  id: number;
  platform: string;
  arch: string;
  status: TaskStatus;
  reason: string | null;
  attempt: number;
  queuedAt: number;
  modifiedAt: number;
  /** When its current attempt started and ended (null: not started, or still building). */
  startedAt: number | null;
  endedAt: number | null;
}

export interface JobDetail extends Job {
  packages: JobPackage[];
  /** What its packages build into, so which platforms it can have tasks on. */
  family: PackageFamily;
  tasks: JobTask[];
}

const toJob = (r: JobRow): Job => ({
  id: r.uuid,
  bucket: r.bucket,
  submitter: r.submitter,
  status: r.status,
  reason: r.reason,
  size: r.size,
  platforms: JSON.parse(r.platforms) as string[],
  archs: JSON.parse(r.archs) as string[],
  report: JSON.parse(r.report) as string[],
  submittedAt: r.submitted_at,
  incomingEntry: r.incoming_entry,
  incomingInode: r.incoming_inode,
  createdAt: r.created_at,
  modifiedAt: r.modified_at,
});

export async function findJob(db: Kysely<Database>, uuid: string): Promise<Job | null> {
  const row = await db.selectFrom('jobs').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  return row ? toJob(row) : null;
}

export interface NewJobFacts {
  submitter: string | null;
  submittedAt: number | null;
  incomingEntry: string | null;
  incomingInode?: string | null;
}

/**
 * Records a new job in state `incoming`, with its packages in build order. A job id is never
 * reused: the unique constraint refuses a second one even if two processors race, and that is a
 * PKGF_ERR_JOB_ID naming the id rather than the driver's words.
 */
export async function insertJob(registry: Registry, manifest: Manifest, facts: NewJobFacts): Promise<Job> {
  return writeTransaction(registry, (trx) => insertJobIn(trx, manifest, facts));
}

/** insertJob's writes, inside the caller's transaction (a WriteBatch's, or insertJob's own). */
export async function insertJobIn(trx: Kysely<Database>, manifest: Manifest, facts: NewJobFacts): Promise<Job> {
  const now = Date.now();
  const row = await trx
    .insertInto('jobs')
    .values({
      uuid: manifest.id,
      bucket: manifest.bucket,
      submitter: facts.submitter?.slice(0, 50) ?? null,
      status: 'incoming',
      reason: null,
      size: manifest.size,
      platforms: JSON.stringify(manifest.platforms),
      archs: JSON.stringify(manifest.archs),
      report: JSON.stringify(manifest.report),
      submitted_at: facts.submittedAt === null ? null : Math.floor(facts.submittedAt),
      incoming_entry: facts.incomingEntry,
      incoming_inode: facts.incomingInode ?? null,
      created_at: now,
      modified_at: now,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
    .catch((err: unknown) => {
      if (!isUniqueViolation(err)) throw err;
      throw new PkgForgeError(ErrorCode.jobId, `A job with ID ${manifest.id} has been previously registered`, {
        cause: err,
      });
    });
  await trx
    .insertInto('job_packages')
    .values(
      manifest.packages.map((p, position) => ({
        job_id: row.id,
        position,
        file: p.file,
        type: p.type,
        size: p.size,
        sha1sum: p.sha1sum,
        sha256sum: p.sha256sum ?? null,
        name: null,
        version: null,
        release: null,
      })),
    )
    .execute();
  return toJob(row);
}

/** Jobs still in flight (incoming, valid, accepted) created before `cutoff`: candidates for the incoming processor's orphan sweep. */
export async function listInFlightJobsOlderThan(
  db: Kysely<Database>,
  cutoff: number,
): Promise<{ uuid: string; incomingEntry: string | null }[]> {
  const rows = await db
    .selectFrom('jobs')
    .select(['uuid', 'incoming_entry'])
    .where('status', 'in', [...IN_FLIGHT_JOB_STATUSES])
    .where('created_at', '<', cutoff)
    .execute();
  return rows.map((r) => ({ uuid: r.uuid, incomingEntry: r.incoming_entry }));
}

export async function setJobStatus(
  db: Kysely<Database>,
  uuid: string,
  status: JobStatus,
  reason: string | null = null,
): Promise<void> {
  const result = await db
    .updateTable('jobs')
    .set({ status, reason, modified_at: Date.now() })
    .where('uuid', '=', uuid)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0)
    throw new PkgForgeError(ErrorCode.notFound, `Failed to find a registry entry for job ${uuid}`);
}

/** Marks a job `valid`, recording what validation learnt of each package (name, version, release). */
export async function markJobValid(registry: Registry, uuid: string, facts: readonly PackageFacts[]): Promise<void> {
  await writeTransaction(registry, (trx) => markJobValidIn(trx, uuid, facts));
}

export interface PackageFacts {
  position: number;
  name: string;
  version: string;
  release: string;
}

/** markJobValid's writes, inside the caller's transaction. */
export async function markJobValidIn(
  trx: Kysely<Database>,
  uuid: string,
  facts: readonly PackageFacts[],
): Promise<void> {
  const job = await trx
    .updateTable('jobs')
    .set({ status: 'valid', reason: null, modified_at: Date.now() })
    .where('uuid', '=', uuid)
    .returning('id')
    .executeTakeFirst();
  if (!job) throw new PkgForgeError(ErrorCode.notFound, `Failed to find a registry entry for job ${uuid}`);
  for (const f of facts) {
    await trx
      .updateTable('job_packages')
      .set({ name: f.name, version: f.version, release: f.release })
      .where('job_id', '=', job.id)
      .where('position', '=', f.position)
      .execute();
  }
}

export interface JobFilter {
  submitter?: string;
  status?: JobStatus;
  bucket?: string;
  /** Only jobs with a source package of this name. */
  package?: string;
  limit?: number;
}

/** Jobs, newest first (the first page of listJobsPage). */
export async function listJobs(db: Kysely<Database>, filter: JobFilter = {}): Promise<Job[]> {
  return (await listJobsPage(db, { ...filter, limit: filter.limit ?? 100 })).jobs;
}

export async function getJobDetail(db: Kysely<Database>, uuid: string): Promise<JobDetail | null> {
  const row = await db.selectFrom('jobs').selectAll().where('uuid', '=', uuid).executeTakeFirst();
  if (!row) return null;
  const packages = await db
    .selectFrom('job_packages')
    .select(['position', 'file', 'type', 'size', 'sha1sum', 'sha256sum', 'name', 'version', 'release'])
    .where('job_id', '=', row.id)
    .orderBy('position')
    .execute();
  const tasks = (await tasksOfJobs(db, [row.id])).get(row.id) ?? [];
  return {
    ...toJob(row),
    packages,
    family: manifestFamily({ packages: packages.map((p) => ({ type: p.type as SourceType })) }),
    tasks,
  };
}

/**
 * Jobs that have ended (every task ended, or invalid), newest first, of one bucket or submitter:
 * what the feeds carry.
 */
export async function listFinishedJobs(
  db: Kysely<Database>,
  filter: { bucket?: string; submitter?: string; limit?: number },
): Promise<(Job & { tasks: JobTask[] })[]> {
  let q = db
    .selectFrom('jobs')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('status', '=', JobStatus.invalid),
        eb.and([
          eb('tasks_total', '>', 0),
          eb(eb('tasks_success', '+', eb('tasks_fail', '+', eb.ref('tasks_cancelled'))), '=', eb.ref('tasks_total')),
        ]),
      ]),
    );
  if (filter.bucket !== undefined) q = q.where('bucket', '=', filter.bucket);
  if (filter.submitter !== undefined) q = q.where('submitter', '=', filter.submitter);
  const rows = await q
    .orderBy('id', 'desc')
    .limit(filter.limit ?? 50)
    .execute();
  const tasks = await tasksOfJobs(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({ ...toJob(r), tasks: tasks.get(r.id) ?? [] }));
}

/**
 * The tasks of some jobs (by their row ids) with their platforms and their current attempts' times,
 * by platform and arch within each job.
 */
export async function tasksOfJobs(db: Kysely<Database>, jobIds: number[]): Promise<Map<number, JobTask[]>> {
  const byJob = new Map<number, JobTask[]>();
  if (jobIds.length === 0) return byJob;
  const rows = await db
    .selectFrom('tasks')
    .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
    // The task's current attempt, for its times.
    .leftJoin('attempts', (j) =>
      j.onRef('attempts.task_id', '=', 'tasks.id').onRef('attempts.number', '=', 'tasks.attempt'),
    )
    .select([
      'tasks.id',
      'tasks.job_id',
      'platforms.name as platform',
      'platforms.arch',
      'tasks.status',
      'tasks.reason',
      'tasks.attempt',
      'tasks.queued_at',
      'tasks.modified_at',
      'attempts.started_at',
      'attempts.ended_at',
    ])
    .where('tasks.job_id', 'in', jobIds)
    .orderBy('platforms.name')
    .orderBy('platforms.arch')
    .execute();
  for (const t of rows) {
    const tasks = byJob.get(t.job_id) ?? [];
    byJob.set(t.job_id, tasks);
    tasks.push({
      id: t.id,
      platform: t.platform,
      arch: t.arch,
      status: t.status,
      reason: t.reason,
      attempt: t.attempt,
      queuedAt: t.queued_at,
      modifiedAt: t.modified_at,
      startedAt: t.started_at,
      endedAt: t.ended_at,
    });
  }
  return byJob;
}

export interface JobPageFilter extends JobFilter {
  /** Only jobs with a task on this platform. */
  platform?: string;
  /** The cursor from a previous page: jobs older than it. */
  before?: number;
}

/** A page of jobs, newest first, with the cursor of the next page (keyset pagination). */
export async function listJobsPage(
  db: Kysely<Database>,
  filter: JobPageFilter = {},
): Promise<{ jobs: Job[]; next: number | null }> {
  const limit = filter.limit ?? 50;
  let q = db.selectFrom('jobs').selectAll();
  if (filter.submitter !== undefined) q = q.where('submitter', '=', filter.submitter);
  if (filter.status !== undefined) q = q.where('status', '=', filter.status);
  if (filter.bucket !== undefined) q = q.where('bucket', '=', filter.bucket);
  if (filter.before !== undefined) q = q.where('id', '<', filter.before);
  if (filter.package !== undefined) {
    const name = filter.package;
    // Driven by the index on job_packages(name, job_id), not a scan of the jobs.
    q = q.where('id', 'in', (eb) => eb.selectFrom('job_packages').select('job_id').where('name', '=', name));
  }
  if (filter.platform !== undefined) {
    const platform = filter.platform;
    q = q.where((eb) =>
      eb.exists(
        eb
          .selectFrom('tasks')
          .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
          .select('tasks.id')
          .whereRef('tasks.job_id', '=', 'jobs.id')
          .where('platforms.name', '=', platform),
      ),
    );
  }
  const rows = await q
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  const page = rows.slice(0, limit);
  return { jobs: page.map(toJob), next: rows.length > limit ? page[page.length - 1]!.id : null };
}

/**
 * Sets a job's reason to the sum of its failed tasks (core/build-failure.ts), or clears it when none
 * failed (after a retry): called when a task fails and when tasks are retried, so a failed job says
 * why in every list. Two statements (a job has a task per platform), only on those paths.
 */
export async function refreshJobFailureReason(db: Kysely<Database>, jobRowId: number): Promise<void> {
  const tasks = await db
    .selectFrom('tasks')
    .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
    .select(['platforms.name as platform', 'platforms.arch', 'tasks.status', 'tasks.reason'])
    .where('tasks.job_id', '=', jobRowId)
    .orderBy('platforms.name')
    .orderBy('platforms.arch')
    .execute();
  const reason = jobFailureSummary(
    tasks.length,
    tasks.filter((t) => t.status === TaskStatus.fail),
  );
  await db.updateTable('jobs').set({ reason }).where('id', '=', jobRowId).execute();
}
