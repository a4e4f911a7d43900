import { TaskStatus } from '../../core/terms.ts';
import { writeTransaction, type Registry } from '../registry.ts';
import { lockJob, refreshJobStatus } from '../tasks.ts';
import type { Claim } from './types.ts';
import { closeAttempt } from './shared.ts';

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
      const task = await trx
        .selectFrom('tasks')
        .select(['status', 'attempt'])
        .where('id', '=', claim.taskId)
        .executeTakeFirst();
      const mine = await trx
        .selectFrom('attempts')
        .select('outcome')
        .where('task_id', '=', claim.taskId)
        .where('number', '=', claim.attempt)
        .executeTakeFirst();
      return task?.status === outcome && task.attempt === claim.attempt && mine?.outcome === outcome;
    }
    await closeAttempt(trx, claim.taskId, claim.attempt, outcome, reason, logDir);
    await trx
      .updateTable('builders')
      .set({ current_task_id: null, modified_at: now })
      .where('id', '=', claim.builderId)
      .execute();
    await refreshJobStatus(trx, claim.jobRowId, registry.caps);
    return true;
  });
}
