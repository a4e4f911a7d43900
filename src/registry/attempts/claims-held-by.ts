import { sql } from 'kysely';
import { TaskStatus } from '../../core/terms.ts';
import type { Registry } from '../registry.ts';
import type { Claim, BuilderIdentity } from './types.ts';

/**
 * The tasks a builder holds (building, in its name), as claims: a daemon starting up finds the
 * attempts an earlier run of it left, to record their kept outcome or hand them back. With each,
 * the host and the lease: whether the lease is still running, on the database's clock. A plain
 * read: what it finds may change at once, so every use of a claim is fenced by its attempt number.
 */
export async function claimsHeldBy(
  registry: Registry,
  builder: BuilderIdentity,
  taskId?: number,
): Promise<(Claim & { host: string | null; leaseLive: boolean })[]> {
  const rows = await registry.db
    .selectFrom('tasks')
    .innerJoin('jobs', 'jobs.id', 'tasks.job_id')
    .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
    .leftJoin('attempts', (j) =>
      j.onRef('attempts.task_id', '=', 'tasks.id').onRef('attempts.number', '=', 'tasks.attempt'),
    )
    .select([
      'tasks.id',
      'tasks.attempt',
      'tasks.job_id',
      'tasks.accepted_attempt',
      'jobs.uuid',
      'jobs.bucket',
      'platforms.name as platform',
      'platforms.arch',
      'attempts.host',
    ])
    .select(
      sql<number>`case when tasks.lease_expires_at > ${sql.raw(registry.caps.nowMsSql)} then 1 else 0 end`.as('live'),
    )
    .where('tasks.builder_id', '=', builder.id)
    .where('tasks.status', '=', TaskStatus.building)
    .$if(taskId !== undefined, (q) => q.where('tasks.id', '=', taskId!))
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

/**
 * The builder's claim of one task, if it holds it now (building, in its name) with attempt `attempt`:
 * what a remote builder's report on an attempt is checked against. `stale` when the builder holds the
 * task under another attempt, or holds it no longer (finished, cancelled, requeued, taken by another);
 * `foreign` when the attempt is not one of this builder's (or there is none).
 */
export async function claimHeld(
  registry: Registry,
  builder: BuilderIdentity,
  taskId: number,
  attempt: number,
): Promise<Claim | 'stale' | 'foreign'> {
  const [held] = await claimsHeldBy(registry, builder, taskId);
  if (!held || held.attempt !== attempt) {
    const row = await registry.db
      .selectFrom('attempts')
      .select('builder')
      .where('task_id', '=', taskId)
      .where('number', '=', attempt)
      .executeTakeFirst();
    return row?.builder === builder.name ? 'stale' : 'foreign';
  }
  const { host: _host, leaseLive: _live, ...claim } = held;
  return claim;
}
