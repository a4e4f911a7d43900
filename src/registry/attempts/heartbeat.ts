import { TaskStatus } from '../../core/terms.ts';
import type { Registry } from '../registry.ts';
import type { Claim, HeartbeatAnswer } from './types.ts';
import { leaseUntil } from './shared.ts';

/**
 * Renews the claim's lease and the builder's heartbeat. Concurrency: the renewal repeats the claim's
 * conditions (attempt, `building`), so it never revives a task that was finished, cancelled or
 * requeued meanwhile; it then reads why it could not.
 */
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
  const task = await registry.db
    .selectFrom('tasks')
    .select(['status', 'attempt'])
    .where('id', '=', claim.taskId)
    .executeTakeFirst();
  return task?.status === TaskStatus.cancelled && task.attempt === claim.attempt ? 'cancelled' : 'lost';
}

/** Whether the claim is still the task's current, running attempt (a cheap read between heartbeats). */
export async function claimStatus(registry: Registry, claim: Claim): Promise<HeartbeatAnswer> {
  const task = await registry.db
    .selectFrom('tasks')
    .select(['status', 'attempt'])
    .where('id', '=', claim.taskId)
    .executeTakeFirst();
  if (task?.status === TaskStatus.building && task.attempt === claim.attempt) return 'ok';
  return task?.status === TaskStatus.cancelled && task.attempt === claim.attempt ? 'cancelled' : 'lost';
}
