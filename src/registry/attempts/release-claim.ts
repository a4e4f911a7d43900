import { TaskStatus } from '../../core/terms.ts';
import { notifyTasks, writeTransaction, type Registry } from '../registry.ts';
import type { Claim } from './types.ts';
import { closeAttempt } from './shared.ts';

/**
 * Gives a claimed task back to the queue (a daemon stopping or aborting), keeping its place.
 * Concurrency: fenced by the attempt number and `building`; returns false when the task had already
 * moved on (finished, cancelled, requeued and claimed again), and then changes nothing of the task.
 */
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
    if (released)
      await notifyTasks(registry, trx, [
        (await trx.selectFrom('tasks').select('platform_id').where('id', '=', claim.taskId).executeTakeFirstOrThrow())
          .platform_id,
      ]);
    return released;
  });
}
