import { sql, type ExpressionBuilder } from 'kysely';
import { TaskStatus } from '../../core/terms.ts';
import { writeTransaction, type Registry } from '../registry.ts';
import type { Database } from '../schema.ts';
import type { Claim, BuilderIdentity } from './types.ts';
import { leaseUntil } from './shared.ts';

/**
 * Claims the oldest waiting task of the builder's platform, or returns null when there is none: the
 * task becomes `building` under a new attempt number with a lease, the attempt is recorded, and the
 * builder holds the task. Claimed or not, the builder's heartbeat is recorded (the caller holds no
 * task when it looks for one).
 *
 * PostgreSQL: one statement (graphile-worker's `get_job` shape): the task is picked with SKIP
 * LOCKED, so concurrent claimers pass over a row another is taking and never wait on each other,
 * and the attempt and the builder are written by WITH queries of the same statement. SQLite: the
 * same three writes in one IMMEDIATE transaction, which already serialises writers.
 */
export async function claimNextTask(
  registry: Registry,
  builder: BuilderIdentity,
  host: string,
  leaseMs: number,
): Promise<Claim | null> {
  const now = Date.now();
  let next = registry.db
    .selectFrom('tasks')
    .select('id')
    .where('platform_id', '=', builder.platformId)
    .where('status', '=', TaskStatus.needsBuild)
    .orderBy('queued_at')
    .orderBy('id')
    .limit(1);
  if (registry.caps.supportsSkipLocked) next = next.forUpdate().skipLocked();
  const taskSet = {
    status: TaskStatus.building,
    attempt: sql<number>`attempt + 1`,
    builder_id: builder.id,
    lease_expires_at: leaseUntil(registry, leaseMs),
    reason: null,
    modified_at: now,
  };
  // What the builder needs of the task's job and platform, read as the task is taken.
  const taken = [
    'tasks.id',
    'tasks.job_id',
    'tasks.attempt',
    'tasks.accepted_attempt',
    (eb: ExpressionBuilder<Database, 'tasks'>) =>
      eb.selectFrom('jobs').select('jobs.uuid').whereRef('jobs.id', '=', 'tasks.job_id').as('uuid'),
    (eb: ExpressionBuilder<Database, 'tasks'>) =>
      eb.selectFrom('jobs').select('jobs.bucket').whereRef('jobs.id', '=', 'tasks.job_id').as('bucket'),
    (eb: ExpressionBuilder<Database, 'tasks'>) =>
      eb
        .selectFrom('platforms')
        .select('platforms.name')
        .whereRef('platforms.id', '=', 'tasks.platform_id')
        .as('platform'),
    (eb: ExpressionBuilder<Database, 'tasks'>) =>
      eb.selectFrom('platforms').select('platforms.arch').whereRef('platforms.id', '=', 'tasks.platform_id').as('arch'),
  ] as const;
  // The builder's heartbeat, with or without a task: an idle daemon's look for work is its heartbeat.
  const holderSet = { host, last_heartbeat_at: now, unable_reason: null, stopped_at: null, modified_at: now };
  let row;
  if (registry.caps.supportsDataModifyingCte) {
    row = await registry.db
      .with('claimed', (db) => db.updateTable('tasks').set(taskSet).where('id', '=', next).returning(taken))
      .with('attempt', (db) =>
        db
          .insertInto('attempts')
          .columns(['task_id', 'number', 'builder', 'host', 'started_at'])
          .expression((eb) =>
            eb
              .selectFrom('claimed')
              .select((e) => [
                'claimed.id',
                'claimed.attempt',
                e.cast<string>(e.val(builder.name), 'text').as('builder'),
                e.cast<string>(e.val(host), 'text').as('host'),
                e.cast<number>(e.val(now), 'bigint').as('started_at'),
              ]),
          )
          .returning('id'),
      )
      .with('holder', (db) =>
        db
          .updateTable('builders')
          .set((eb) => ({ ...holderSet, current_task_id: eb.selectFrom('claimed').select('claimed.id') }))
          .where('id', '=', builder.id)
          .returning('id'),
      )
      .selectFrom('claimed')
      .selectAll()
      .executeTakeFirst();
  } else {
    row = await writeTransaction(registry, async (trx) => {
      const task = await trx
        .updateTable('tasks')
        .set(taskSet)
        .where('id', '=', next)
        .returning(taken)
        .executeTakeFirst();
      await trx
        .updateTable('builders')
        .set({ ...holderSet, current_task_id: task?.id ?? null })
        .where('id', '=', builder.id)
        .execute();
      if (!task) return undefined;
      await trx
        .insertInto('attempts')
        .values({ task_id: task.id, number: task.attempt, builder: builder.name, host, started_at: now })
        .execute();
      return task;
    });
  }
  if (!row) return null;
  return {
    taskId: row.id,
    attempt: row.attempt,
    jobRowId: row.job_id,
    jobId: row.uuid!,
    bucket: row.bucket!,
    platform: row.platform!,
    arch: row.arch!,
    builderId: builder.id,
    builderName: builder.name,
    acceptedAttempt: row.accepted_attempt,
  };
}
