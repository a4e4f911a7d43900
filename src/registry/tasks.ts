import { sql, type Kysely } from 'kysely';
import { refreshJobFailureReason } from './jobs.ts';
import { countTasks } from '../core/job-status.ts';
import { selectTargets, type Target } from '../core/targets.ts';
import { JobStatus, TaskStatus, type PackageFamily } from '../core/terms.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { activeTargets } from './platforms.ts';
import type { RegistryCapabilities } from './capabilities.ts';
import { notifyTasks, writeTransaction, type Registry } from './registry.ts';
import type { Database } from './schema.ts';
import { jobCountersSet } from './job-counters.ts';

/**
 * Registers one task per selected active platform/arch and marks the job `registered`, in one
 * transaction. Running it again (after a crash) adds nothing twice: tasks are unique per job and
 * platform. Returns the targets registered.
 */
export async function registerTasks(
  registry: Registry,
  uuid: string,
  platforms: readonly string[],
  archs: readonly string[],
  family: PackageFamily,
  /** Narrows the selection by what the packages say they build on (a `.dsc`'s Architecture). */
  narrow?: (selected: Target[]) => Target[],
): Promise<Target[]> {
  return writeTransaction(registry, (trx) => registerTasksIn(registry, trx, uuid, platforms, archs, family, narrow));
}

/** registerTasks's writes, inside the caller's transaction (a WriteBatch's, or registerTasks's own). */
export async function registerTasksIn(
  registry: Registry,
  trx: Kysely<Database>,
  uuid: string,
  platforms: readonly string[],
  archs: readonly string[],
  family: PackageFamily,
  narrow: (selected: Target[]) => Target[] = (selected) => selected,
): Promise<Target[]> {
  const job = await trx
    .selectFrom('jobs')
    .select(['id', 'status', 'submitted_at'])
    .where('uuid', '=', uuid)
    .executeTakeFirst();
  if (!job) throw new PkgForgeError(ErrorCode.notFound, `Failed to find a registry entry for job ${uuid}`);
  const available = await activeTargets(trx);
  const wanted = narrow(selectTargets(available, platforms, archs, family));
  const now = Date.now();
  // Builders take tasks in submission order, whatever order the incoming processor finished them in.
  const queuedAt = job.submitted_at ?? now;
  const rows = wanted.map((t) => {
    const platform = available.find((p) => p.name === t.platform && p.arch === t.arch)!;
    return {
      job_id: job.id,
      platform_id: platform.id,
      status: TaskStatus.needsBuild,
      reason: null,
      queued_at: queuedAt,
      attempt: 0,
      accepted_attempt: null,
      created_at: now,
      modified_at: now,
    };
  });
  if (rows.length > 0) {
    await trx
      .insertInto('tasks')
      .values(rows)
      .onConflict((oc) => oc.columns(['job_id', 'platform_id']).doNothing())
      .execute();
    await notifyTasks(
      registry,
      trx,
      rows.map((r) => r.platform_id),
    );
  }
  await trx
    .updateTable('jobs')
    .set({
      status: JobStatus.registered,
      reason: null,
      modified_at: now,
      tasks_total: sql<number>`(select count(*) from tasks where job_id = ${job.id})`,
    })
    .where('id', '=', job.id)
    .execute();
  return wanted;
}

/**
 * Recounts a job's tasks into its counters and sets its status from them (the original's trigger),
 * inside the caller's transaction: for changes of many tasks at once (cancel, retry, requeue). A
 * single task's finish counts itself in (registry/job-counters.ts: oneMoreEnded).
 */
export async function refreshJobStatus(
  trx: Kysely<Database>,
  jobId: number,
  caps: RegistryCapabilities,
): Promise<void> {
  await lockJob(trx, caps, jobId);
  const tasks = await trx.selectFrom('tasks').select('status').where('job_id', '=', jobId).execute();
  await trx
    .updateTable('jobs')
    .set(jobCountersSet(countTasks(tasks.map((t) => t.status)), Date.now()))
    .where('id', '=', jobId)
    .execute();
}

/**
 * Locks a job's row for the rest of the transaction (PostgreSQL; SQLite's writers are serialised
 * already). Every transaction that changes a job's tasks takes this lock *first*, before any task
 * row, so two of them never deadlock, and two tasks of one job finishing at once cannot both read
 * the other's old status when deriving the job's.
 */
export async function lockJob(trx: Kysely<Database>, caps: RegistryCapabilities, jobId: number): Promise<void> {
  if (caps.supportsRowLocks) await trx.selectFrom('jobs').select('id').where('id', '=', jobId).forUpdate().execute();
}

export interface TaskSelector {
  platform?: string;
  arch?: string;
}

async function selectJobTasks(trx: Kysely<Database>, caps: RegistryCapabilities, uuid: string, selector: TaskSelector) {
  let jobQuery = trx.selectFrom('jobs').select(['id', 'status']).where('uuid', '=', uuid);
  if (caps.supportsRowLocks) jobQuery = jobQuery.forUpdate();
  const job = await jobQuery.executeTakeFirst();
  if (!job) throw new PkgForgeError(ErrorCode.notFound, `There is no job ${uuid}`);
  let q = trx
    .selectFrom('tasks')
    .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
    .select([
      'tasks.id',
      'tasks.status',
      'tasks.attempt',
      'tasks.builder_id',
      'tasks.platform_id',
      'platforms.name as platform',
      'platforms.arch',
    ]);
  q = q.where('tasks.job_id', '=', job.id);
  if (selector.platform) q = q.where('platforms.name', '=', selector.platform);
  if (selector.arch) q = q.where('platforms.arch', '=', selector.arch);
  // Locked, so a claim, a finish or a requeue cannot change them between our look and our update.
  if (caps.supportsRowLocks) q = q.forUpdate('tasks' as never);
  return { job, tasks: await q.execute() };
}

/**
 * Cancels a job's waiting and running tasks (or those of one platform/arch). Waiting tasks end at
 * once; a running build learns of it at its next heartbeat and is killed. Returns the tasks cancelled.
 */
export async function cancelTasks(
  registry: Registry,
  uuid: string,
  selector: TaskSelector = {},
  who = 'a user',
): Promise<{ platform: string; arch: string; wasRunning: boolean }[]> {
  return writeTransaction(registry, async (trx) => {
    const { job, tasks } = await selectJobTasks(trx, registry.caps, uuid, selector);
    const now = Date.now();
    const cancelled = [];
    for (const t of tasks) {
      if (t.status !== TaskStatus.needsBuild && t.status !== TaskStatus.building) continue;
      const reason = `cancelled by ${who}`;
      await trx
        .updateTable('tasks')
        .set({ status: TaskStatus.cancelled, reason, lease_expires_at: null, modified_at: now })
        .where('id', '=', t.id)
        .execute();
      if (t.status === TaskStatus.building) {
        await trx
          .updateTable('attempts')
          .set({ ended_at: now, outcome: 'cancelled', reason })
          .where('task_id', '=', t.id)
          .where('number', '=', t.attempt)
          .where('ended_at', 'is', null)
          .execute();
        await trx.updateTable('builders').set({ current_task_id: null }).where('current_task_id', '=', t.id).execute();
      }
      cancelled.push({ platform: t.platform, arch: t.arch, wasRunning: t.status === TaskStatus.building });
    }
    await refreshJobStatus(trx, job.id, registry.caps);
    return cancelled;
  });
}

/** Puts a job's failed and cancelled tasks back in the queue, in their old place. Returns the tasks requeued. */
export async function retryTasks(
  registry: Registry,
  uuid: string,
  selector: TaskSelector = {},
): Promise<{ platform: string; arch: string }[]> {
  return writeTransaction(registry, async (trx) => {
    const { job, tasks } = await selectJobTasks(trx, registry.caps, uuid, selector);
    const retried = [];
    for (const t of tasks) {
      if (t.status !== TaskStatus.fail && t.status !== TaskStatus.cancelled) continue;
      // A retry asks for a new build: no earlier attempt's build is published instead.
      await trx
        .updateTable('tasks')
        .set({
          status: TaskStatus.needsBuild,
          reason: null,
          builder_id: null,
          lease_expires_at: null,
          accepted_attempt: null,
          modified_at: Date.now(),
        })
        .where('id', '=', t.id)
        .execute();
      retried.push({ platform: t.platform, arch: t.arch, platformId: t.platform_id });
    }
    await notifyTasks(
      registry,
      trx,
      retried.map((t) => t.platformId),
    );
    await refreshJobStatus(trx, job.id, registry.caps);
    if (retried.length > 0) await refreshJobFailureReason(trx, job.id);
    return retried.map(({ platform, arch }) => ({ platform, arch }));
  });
}
