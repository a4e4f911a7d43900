import { TaskStatus } from '../../core/terms.ts';
import type { Registry } from '../registry.ts';
import type { Claim, HeartbeatAnswer } from './types.ts';
import { leaseUntil } from './shared.ts';
import { claimStatus } from './heartbeat.ts';

/**
 * Accepts the claim's build for publishing, if the claim still holds the task (renewing its lease):
 * from now on, whoever claims the task publishes this attempt's kept products instead of building.
 * Concurrency: one conditional update, fenced like a heartbeat; a requeue keeps the acceptance.
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
