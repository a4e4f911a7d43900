import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import { TaskStatus } from '../core/terms.ts';
import { notifyTasks, writeTransaction, type Registry } from './registry.ts';
import type { Database } from './schema.ts';
import { lockJob, refreshJobStatus } from './tasks.ts';

/**
 * Claims, leases and attempts: how build daemons take tasks and give them back.
 *
 * A claim is one statement that moves the oldest waiting task of a platform to `building`, bumps
 * its attempt number and gives the builder a lease. The holder renews the lease with heartbeats;
 * a task whose lease runs out goes back to `needs build` (keeping its place in the queue). Every
 * result names its attempt number, and a result for an attempt that is no longer current is
 * refused, so a daemon that lost its lease cannot overwrite a newer attempt.
 */

/** A task in a builder's hands. */
export interface Claim {
  taskId: number;
  attempt: number;
  jobRowId: number;
  jobId: string;
  bucket: string;
  platform: string;
  arch: string;
  builderId: number;
  builderName: string;
  /** An earlier attempt whose build the registry accepted: this claim publishes it instead of building. */
  acceptedAttempt: number | null;
}

export interface BuilderIdentity {
  id: number;
  name: string;
  platformId: number;
}

export async function builderIdentity(db: Kysely<Database>, name: string): Promise<(BuilderIdentity & { platform: string; arch: string; active: boolean }) | null> {
  const row = await db
    .selectFrom('builders')
    .innerJoin('platforms', 'platforms.id', 'builders.platform_id')
    .select(['builders.id', 'builders.name', 'builders.platform_id', 'platforms.name as platform', 'platforms.arch', 'platforms.active'])
    .where('builders.name', '=', name)
    .executeTakeFirst();
  return row ? { id: row.id, name: row.name, platformId: row.platform_id, platform: row.platform, arch: row.arch, active: row.active === 1 } : null;
}

/**
 * The tasks a builder holds (building, in its name), as claims: a daemon starting up finds the
 * attempts an earlier run of it left, to record their kept outcome or hand them back. With each,
 * the host and the lease: whether the lease is still running, on the database's clock.
 */
export async function claimsHeldBy(registry: Registry, builder: BuilderIdentity): Promise<(Claim & { host: string | null; leaseLive: boolean })[]> {
  const rows = await registry.db
    .selectFrom('tasks')
    .innerJoin('jobs', 'jobs.id', 'tasks.job_id')
    .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
    .leftJoin('attempts', (j) => j.onRef('attempts.task_id', '=', 'tasks.id').onRef('attempts.number', '=', 'tasks.attempt'))
    .select(['tasks.id', 'tasks.attempt', 'tasks.job_id', 'tasks.accepted_attempt', 'jobs.uuid', 'jobs.bucket', 'platforms.name as platform', 'platforms.arch', 'attempts.host'])
    .select(sql<number>`case when tasks.lease_expires_at > ${sql.raw(registry.caps.nowMsSql)} then 1 else 0 end`.as('live'))
    .where('tasks.builder_id', '=', builder.id)
    .where('tasks.status', '=', TaskStatus.building)
    .orderBy('tasks.id')
    .execute();
  return rows.map((r) => ({
    taskId: r.id,
    attempt: r.attempt,
    jobRowId: r.job_id,
    jobId: r.uuid,
    bucket: r.bucket,
    platform: r.platform,
    arch: r.arch,
    builderId: builder.id,
    builderName: builder.name,
    acceptedAttempt: r.accepted_attempt,
    host: r.host,
    leaseLive: Number(r.live) === 1,
  }));
}

/** Claims the oldest waiting task of the builder's platform, or returns null when there is none. */
export async function claimNextTask(registry: Registry, builder: BuilderIdentity, host: string, leaseMs: number): Promise<Claim | null> {
  return writeTransaction(registry, async (trx) => {
    const now = Date.now();
    // PostgreSQL: SKIP LOCKED lets concurrent claimers pass over a row another is taking, so
    // builders never wait on each other. SQLite: the IMMEDIATE transaction already serialises writers.
    let next = trx
      .selectFrom('tasks')
      .select('id')
      .where('platform_id', '=', builder.platformId)
      .where('status', '=', TaskStatus.needsBuild)
      .orderBy('queued_at')
      .orderBy('id')
      .limit(1);
    if (registry.caps.supportsSkipLocked) next = next.forUpdate().skipLocked();
    const task = await trx
      .updateTable('tasks')
      .set({ status: TaskStatus.building, attempt: sql<number>`attempt + 1`, builder_id: builder.id, lease_expires_at: leaseUntil(registry, leaseMs), reason: null, modified_at: now })
      .where('id', '=', next)
      .returning(['id', 'job_id', 'attempt', 'accepted_attempt'])
      .executeTakeFirst();
    if (!task) return null;
    await trx.insertInto('attempts').values({ task_id: task.id, number: task.attempt, builder: builder.name, host, started_at: now, ended_at: null, outcome: null, reason: null, log_dir: null }).execute();
    await trx.updateTable('builders').set({ current_task_id: task.id, host, last_heartbeat_at: now, modified_at: now }).where('id', '=', builder.id).execute();
    const info = await trx
      .selectFrom('jobs')
      .innerJoin('platforms', (j) => j.on('platforms.id', '=', builder.platformId))
      .select(['jobs.uuid', 'jobs.bucket', 'platforms.name as platform', 'platforms.arch'])
      .where('jobs.id', '=', task.job_id)
      .executeTakeFirstOrThrow();
    return { taskId: task.id, attempt: task.attempt, jobRowId: task.job_id, jobId: info.uuid, bucket: info.bucket, platform: info.platform, arch: info.arch, builderId: builder.id, builderName: builder.name, acceptedAttempt: task.accepted_attempt };
  });
}

/** What a heartbeat learns: carry on, stop because the task was cancelled, or stop because the lease is gone. */
export type HeartbeatAnswer = 'ok' | 'cancelled' | 'lost';

/** Renews the claim's lease and the builder's heartbeat. */
export async function heartbeat(registry: Registry, claim: Claim, leaseMs: number): Promise<HeartbeatAnswer> {
  const now = Date.now();
  await registry.db.updateTable('builders').set({ last_heartbeat_at: now }).where('id', '=', claim.builderId).execute();
  const renewed = await registry.db
    .updateTable('tasks')
    .set({ lease_expires_at: leaseUntil(registry, leaseMs) })
    .where('id', '=', claim.taskId)
    .where('attempt', '=', claim.attempt)
    .where('status', '=', TaskStatus.building)
    .executeTakeFirst();
  if (Number(renewed.numUpdatedRows) === 1) return 'ok';
  const task = await registry.db.selectFrom('tasks').select(['status', 'attempt']).where('id', '=', claim.taskId).executeTakeFirst();
  return task?.status === TaskStatus.cancelled && task.attempt === claim.attempt ? 'cancelled' : 'lost';
}

/**
 * Accepts the claim's build for publishing, if the claim still holds the task (renewing its lease):
 * from now on, whoever claims the task publishes this attempt's kept products instead of building.
 */
export async function acceptAttempt(registry: Registry, claim: Claim, leaseMs: number): Promise<HeartbeatAnswer> {
  const accepted = await registry.db
    .updateTable('tasks')
    .set({ accepted_attempt: claim.attempt, lease_expires_at: leaseUntil(registry, leaseMs) })
    .where('id', '=', claim.taskId)
    .where('attempt', '=', claim.attempt)
    .where('status', '=', TaskStatus.building)
    .executeTakeFirst();
  if (Number(accepted.numUpdatedRows) === 1) return 'ok';
  return claimStatus(registry, claim);
}

/** Whether the claim is still the task's current, running attempt (a cheap read between heartbeats). */
export async function claimStatus(registry: Registry, claim: Claim): Promise<HeartbeatAnswer> {
  const task = await registry.db.selectFrom('tasks').select(['status', 'attempt']).where('id', '=', claim.taskId).executeTakeFirst();
  if (task?.status === TaskStatus.building && task.attempt === claim.attempt) return 'ok';
  return task?.status === TaskStatus.cancelled && task.attempt === claim.attempt ? 'cancelled' : 'lost';
}

/** Marks a builder as alive with nothing in hand (an idle daemon's heartbeat). */
export async function idleHeartbeat(db: Kysely<Database>, builderId: number, host: string, unableReason: string | null = null, sandbox?: string | null): Promise<void> {
  await db
    .updateTable('builders')
    .set({ last_heartbeat_at: Date.now(), host, unable_reason: unableReason, ...(sandbox !== undefined && { sandbox }) })
    .where('id', '=', builderId)
    .execute();
}

/**
 * Records the end of an attempt: the task becomes `success` or `fail` with the reason, the builder
 * lets go, the job status follows. Returns false (and changes nothing) when the attempt is no
 * longer the task's current one: its lease expired or the task was cancelled meanwhile.
 */
export async function finishAttempt(
  registry: Registry,
  claim: Claim,
  outcome: typeof TaskStatus.success | typeof TaskStatus.fail,
  reason: string | null,
  logDir: string | null,
): Promise<boolean> {
  return writeTransaction(registry, async (trx) => {
    await lockJob(trx, registry.caps, claim.jobRowId);
    const now = Date.now();
    const updated = await trx
      .updateTable('tasks')
      .set({ status: outcome, reason, builder_id: null, lease_expires_at: null, modified_at: now })
      .where('id', '=', claim.taskId)
      .where('attempt', '=', claim.attempt)
      .where('status', '=', TaskStatus.building)
      .executeTakeFirst();
    if (Number(updated.numUpdatedRows) !== 1) {
      // A retry of a finish whose commit reached the server but whose answer was lost finds its own
      // result already there: that is an accepted result, not a refused one.
      const task = await trx.selectFrom('tasks').select(['status', 'attempt']).where('id', '=', claim.taskId).executeTakeFirst();
      const mine = await trx.selectFrom('attempts').select('outcome').where('task_id', '=', claim.taskId).where('number', '=', claim.attempt).executeTakeFirst();
      return task?.status === outcome && task.attempt === claim.attempt && mine?.outcome === outcome;
    }
    await closeAttempt(trx, claim.taskId, claim.attempt, outcome, reason, logDir);
    await trx.updateTable('builders').set({ current_task_id: null, modified_at: now }).where('id', '=', claim.builderId).execute();
    await refreshJobStatus(trx, claim.jobRowId, registry.caps);
    return true;
  });
}

/** Gives a claimed task back to the queue (a daemon stopping or aborting), keeping its place. */
export async function releaseClaim(registry: Registry, claim: Claim, reason: string): Promise<boolean> {
  return writeTransaction(registry, async (trx) => {
    const updated = await trx
      .updateTable('tasks')
      .set({ status: TaskStatus.needsBuild, builder_id: null, lease_expires_at: null, modified_at: Date.now() })
      .where('id', '=', claim.taskId)
      .where('attempt', '=', claim.attempt)
      .where('status', '=', TaskStatus.building)
      .executeTakeFirst();
    await closeAttempt(trx, claim.taskId, claim.attempt, 'requeued', reason, null);
    await trx.updateTable('builders').set({ current_task_id: null }).where('id', '=', claim.builderId).execute();
    const released = Number(updated.numUpdatedRows) === 1;
    if (released) await notifyTasks(registry, trx, [(await trx.selectFrom('tasks').select('platform_id').where('id', '=', claim.taskId).executeTakeFirstOrThrow()).platform_id]);
    return released;
  });
}

/**
 * Returns to the queue every building task whose lease has run out (its builder died or lost the
 * registry), and every task still held by `builderId` when given (a daemon restarting resets its
 * own unfinished attempt). Returns the tasks requeued.
 *
 * Each update repeats its conditions, so a task finished, renewed or cancelled between the look
 * and the update is left alone (PostgreSQL runs this beside other transactions).
 */
export async function requeueAbandoned(registry: Registry, options: { builderId?: number } = {}): Promise<number[]> {
  return writeTransaction(registry, async (trx) => {
    const now = Date.now();
    const expired = (eb: ExpressionBuilder<Database, 'tasks'>) => eb('lease_expires_at', '<', sql<number>`${sql.raw(registry.caps.nowMsSql)}`);
    const abandoned = (eb: ExpressionBuilder<Database, 'tasks'>) =>
      options.builderId === undefined ? expired(eb) : eb.or([expired(eb), eb('builder_id', '=', options.builderId)]);
    const stale = await trx.selectFrom('tasks').select(['id', 'attempt', 'builder_id', 'platform_id', 'job_id']).where('status', '=', TaskStatus.building).where(abandoned).execute();
    const requeued: typeof stale = [];
    for (const t of stale) {
      await lockJob(trx, registry.caps, t.job_id);
      const updated = await trx
        .updateTable('tasks')
        .set({ status: TaskStatus.needsBuild, builder_id: null, lease_expires_at: null, modified_at: now })
        .where('id', '=', t.id)
        .where('attempt', '=', t.attempt)
        .where('status', '=', TaskStatus.building)
        .where(abandoned)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1) continue;
      requeued.push(t);
      const own = options.builderId !== undefined && t.builder_id === options.builderId;
      await closeAttempt(trx, t.id, t.attempt, own ? 'abandoned' : 'lease expired', own ? 'the build daemon restarted during the build' : 'the builder stopped renewing its lease (died or lost the registry)', null);
      await trx.updateTable('builders').set({ current_task_id: null }).where('current_task_id', '=', t.id).execute();
      await refreshJobStatus(trx, t.job_id, registry.caps);
    }
    await notifyTasks(registry, trx, requeued.map((t) => t.platform_id));
    return requeued.map((t) => t.id);
  });
}

/** Whether any building task's lease has run out: a plain read, so an idle reaper takes no write lock. */
export async function anyLeaseExpired(registry: Registry): Promise<boolean> {
  const row = await registry.db
    .selectFrom('tasks')
    .select('id')
    .where('status', '=', TaskStatus.building)
    .where('lease_expires_at', '<', sql<number>`${sql.raw(registry.caps.nowMsSql)}`)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** now + ms on the database's clock. */
function leaseUntil(registry: Registry, ms: number) {
  return sql<number>`${sql.raw(registry.caps.nowMsSql)} + ${Math.round(ms)}`;
}

async function closeAttempt(trx: Kysely<Database>, taskId: number, number: number, outcome: string, reason: string | null, logDir: string | null): Promise<void> {
  await trx
    .updateTable('attempts')
    .set({ ended_at: Date.now(), outcome, reason, ...(logDir !== null && { log_dir: logDir }) })
    .where('task_id', '=', taskId)
    .where('number', '=', number)
    .where('ended_at', 'is', null)
    .execute();
}

export interface AttemptRow {
  number: number;
  builder: string;
  host: string;
  startedAt: number;
  endedAt: number | null;
  outcome: string | null;
  reason: string | null;
  logDir: string | null;
}

export async function listAttempts(db: Kysely<Database>, taskId: number): Promise<AttemptRow[]> {
  const rows = await db.selectFrom('attempts').selectAll().where('task_id', '=', taskId).orderBy('number').execute();
  return rows.map((r) => ({ number: r.number, builder: r.builder, host: r.host, startedAt: r.started_at, endedAt: r.ended_at, outcome: r.outcome, reason: r.reason, logDir: r.log_dir }));
}
