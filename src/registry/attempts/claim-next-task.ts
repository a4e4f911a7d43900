import { sql } from 'kysely';
import { TaskStatus } from '../../core/terms.ts';
import { writeTransaction, type Registry } from '../registry.ts';
import type { Claim, BuilderIdentity } from './types.ts';
import { leaseUntil } from './shared.ts';

/** Claims the oldest waiting task of the builder's platform, or returns null when there is none. */
export async function claimNextTask(
  registry: Registry,
  builder: BuilderIdentity,
  host: string,
  leaseMs: number,
): Promise<Claim | null> {
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
      .set({
        status: TaskStatus.building,
        attempt: sql<number>`attempt + 1`,
        builder_id: builder.id,
        lease_expires_at: leaseUntil(registry, leaseMs),
        reason: null,
        modified_at: now,
      })
      .where('id', '=', next)
      .returning(['id', 'job_id', 'attempt', 'accepted_attempt'])
      .executeTakeFirst();
    if (!task) return null;
    await trx
      .insertInto('attempts')
      .values({
        task_id: task.id,
        number: task.attempt,
        builder: builder.name,
        host,
        started_at: now,
        ended_at: null,
        outcome: null,
        reason: null,
        log_dir: null,
      })
      .execute();
    await trx
      .updateTable('builders')
      .set({ current_task_id: task.id, host, last_heartbeat_at: now, modified_at: now })
      .where('id', '=', builder.id)
      .execute();
    const info = await trx
      .selectFrom('jobs')
      .innerJoin('platforms', (j) => j.on('platforms.id', '=', builder.platformId))
      .select(['jobs.uuid', 'jobs.bucket', 'platforms.name as platform', 'platforms.arch'])
      .where('jobs.id', '=', task.job_id)
      .executeTakeFirstOrThrow();
    return {
      taskId: task.id,
      attempt: task.attempt,
      jobRowId: task.job_id,
      jobId: info.uuid,
      bucket: info.bucket,
      platform: info.platform,
      arch: info.arch,
      builderId: builder.id,
      builderName: builder.name,
      acceptedAttempt: task.accepted_attempt,
    };
  });
}
