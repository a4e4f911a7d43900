import { storableText } from '../../core/names.ts';
import { TaskStatus } from '../../core/terms.ts';
import { writeTransaction, type Registry } from '../registry.ts';
import { oneMoreEnded } from '../job-counters.ts';
import { refreshJobFailureReason } from '../jobs.ts';
import type { Claim } from './types.ts';
import { attemptEnd, closeAttempt } from './shared.ts';

type Outcome = typeof TaskStatus.success | typeof TaskStatus.fail;

/**
 * Records the end of an attempt: the task becomes `success` or `fail` with the reason, the attempt
 * is closed, the builder lets go, and the job counts the task in and takes the status that follows.
 * Returns false (and changes nothing) when the attempt is no longer the task's current one: its
 * lease expired or the task was cancelled meanwhile.
 *
 * PostgreSQL: one statement (the changes are WITH queries), so a finish is one round trip and
 * atomic without a transaction. It locks the job row before the task row, as every transaction
 * that changes a job's tasks does (tasks.ts: lockJob), so a finish never deadlocks with a cancel.
 * SQLite: the same changes in one IMMEDIATE transaction.
 */
export async function finishAttempt(
  registry: Registry,
  claim: Claim,
  outcome: Outcome,
  reason: string | null,
  logDir: string | null,
): Promise<boolean> {
  const now = Date.now();
  const taskSet = {
    status: outcome,
    reason: storableText(reason),
    builder_id: null,
    lease_expires_at: null,
    modified_at: now,
  };
  const builderSet = { current_task_id: null, modified_at: now };
  const jobSet = oneMoreEnded(outcome, now);
  let finished: boolean;
  if (registry.caps.supportsDataModifyingCte) {
    const row = await registry.db
      .with('job', (db) => db.selectFrom('jobs').select('id').where('id', '=', claim.jobRowId).forUpdate())
      .with('task', (db) =>
        db
          .updateTable('tasks')
          .set(taskSet)
          .where('id', '=', claim.taskId)
          .where('attempt', '=', claim.attempt)
          .where('status', '=', TaskStatus.building)
          .where('job_id', 'in', db.selectFrom('job').select('id'))
          .returning(['id', 'job_id']),
      )
      .with('attempt', (db) =>
        db
          .updateTable('attempts')
          .set(attemptEnd(outcome, reason, logDir, now))
          .where('task_id', 'in', db.selectFrom('task').select('id'))
          .where('number', '=', claim.attempt)
          .where('ended_at', 'is', null)
          .returning('id'),
      )
      .with('holder', (db) =>
        db
          .updateTable('builders')
          .set(builderSet)
          .where('id', '=', claim.builderId)
          .where((eb) => eb.exists(eb.selectFrom('task').select('id')))
          .returning('id'),
      )
      .with('counted', (db) =>
        db.updateTable('jobs').set(jobSet).where('id', 'in', db.selectFrom('task').select('job_id')).returning('id'),
      )
      .selectFrom('task')
      .select('id')
      .executeTakeFirst();
    finished = row !== undefined;
  } else {
    finished = await writeTransaction(registry, async (trx) => {
      const task = await trx
        .updateTable('tasks')
        .set(taskSet)
        .where('id', '=', claim.taskId)
        .where('attempt', '=', claim.attempt)
        .where('status', '=', TaskStatus.building)
        .returning('id')
        .executeTakeFirst();
      if (!task) return false;
      await closeAttempt(trx, claim.taskId, claim.attempt, outcome, reason, logDir, now);
      await trx.updateTable('builders').set(builderSet).where('id', '=', claim.builderId).execute();
      await trx.updateTable('jobs').set(jobSet).where('id', '=', claim.jobRowId).execute();
      return true;
    });
  }
  const recorded = finished || (await finishedBefore(registry, claim, outcome));
  // After the finish, not in it: a job's reason lagging a moment behind its status costs nothing, and
  // the finish stays one round trip.
  if (recorded && outcome === TaskStatus.fail) await refreshJobFailureReason(registry.db, claim.jobRowId);
  return recorded;
}

/**
 * A retry of a finish whose commit reached the server but whose answer was lost finds its own result
 * already there: that is an accepted result, not a refused one.
 */
async function finishedBefore(registry: Registry, claim: Claim, outcome: Outcome): Promise<boolean> {
  const row = await registry.db
    .selectFrom('tasks')
    .innerJoin('attempts', (j) =>
      j.onRef('attempts.task_id', '=', 'tasks.id').on('attempts.number', '=', claim.attempt),
    )
    .select(['tasks.status', 'tasks.attempt', 'attempts.outcome'])
    .where('tasks.id', '=', claim.taskId)
    .executeTakeFirst();
  return row?.status === outcome && row.attempt === claim.attempt && row.outcome === outcome;
}
