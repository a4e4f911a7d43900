import { sql, type ExpressionBuilder } from 'kysely';
import { TaskStatus } from '../../core/terms.ts';
import { notifyTasks, writeTransaction, type Registry } from '../registry.ts';
import type { Database } from '../schema.ts';
import { lockJob, refreshJobStatus } from '../tasks.ts';
import { closeAttempt } from './shared.ts';

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
    const expired = (eb: ExpressionBuilder<Database, 'tasks'>) =>
      eb('lease_expires_at', '<', sql<number>`${sql.raw(registry.caps.nowMsSql)}`);
    const abandoned = (eb: ExpressionBuilder<Database, 'tasks'>) =>
      options.builderId === undefined ? expired(eb) : eb.or([expired(eb), eb('builder_id', '=', options.builderId)]);
    const stale = await trx
      .selectFrom('tasks')
      .select(['id', 'attempt', 'builder_id', 'platform_id', 'job_id'])
      .where('status', '=', TaskStatus.building)
      .where(abandoned)
      .execute();
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
      await closeAttempt(
        trx,
        t.id,
        t.attempt,
        own ? 'abandoned' : 'lease expired',
        own
          ? 'the build daemon restarted during the build'
          : 'the builder stopped renewing its lease (died or lost the registry)',
        null,
      );
      await trx.updateTable('builders').set({ current_task_id: null }).where('current_task_id', '=', t.id).execute();
      await refreshJobStatus(trx, t.job_id, registry.caps);
    }
    await notifyTasks(
      registry,
      trx,
      requeued.map((t) => t.platform_id),
    );
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
