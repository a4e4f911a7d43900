import type { Kysely } from 'kysely';
import { deriveJobStatus } from '../core/job-status.ts';
import { selectTargets, type Target } from '../core/targets.ts';
import { JobStatus, TaskStatus } from '../core/terms.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { activeTargets } from './platforms.ts';
import { writeTransaction, type Registry } from './registry.ts';
import type { Database } from './schema.ts';

/**
 * Registers one task per selected active platform/arch and marks the job `registered`, in one
 * transaction. Running it again (after a crash) adds nothing twice: tasks are unique per job and
 * platform. Returns the targets registered.
 */
export async function registerTasks(registry: Registry, uuid: string, platforms: readonly string[], archs: readonly string[]): Promise<Target[]> {
  return writeTransaction(registry, async (trx) => {
    const job = await trx.selectFrom('jobs').select(['id', 'status', 'submitted_at']).where('uuid', '=', uuid).executeTakeFirst();
    if (!job) throw new PkgForgeError(ErrorCode.notFound, `Failed to find a registry entry for job ${uuid}`);
    const available = await activeTargets(trx);
    const wanted = selectTargets(available, platforms, archs);
    const now = Date.now();
    // Builders take tasks in submission order, whatever order the incoming processor finished them in.
    const queuedAt = job.submitted_at ?? now;
    const rows = wanted.map((t) => {
      const platform = available.find((p) => p.name === t.platform && p.arch === t.arch)!;
      return { job_id: job.id, platform_id: platform.id, status: TaskStatus.needsBuild, reason: null, queued_at: queuedAt, attempt: 0, created_at: now, modified_at: now };
    });
    if (rows.length > 0) {
      await trx.insertInto('tasks').values(rows).onConflict((oc) => oc.columns(['job_id', 'platform_id']).doNothing()).execute();
    }
    await trx.updateTable('jobs').set({ status: JobStatus.registered, reason: null, modified_at: now }).where('id', '=', job.id).execute();
    return wanted;
  });
}

/** Sets a job's status from its tasks (the original's trigger), inside the caller's transaction. */
export async function refreshJobStatus(trx: Kysely<Database>, jobId: number): Promise<void> {
  const tasks = await trx.selectFrom('tasks').select('status').where('job_id', '=', jobId).execute();
  const status = deriveJobStatus(tasks.map((t) => t.status));
  if (status) await trx.updateTable('jobs').set({ status, modified_at: Date.now() }).where('id', '=', jobId).execute();
}
