import { JobStatus, TaskStatus } from './terms.ts';

/**
 * The job status implied by its tasks (the original's `update_job_status` trigger, §5.2), or
 * `null` when the tasks say nothing new (no tasks, or all still waiting or building).
 *
 * Kept in our code rather than a database trigger so that SQLite and PostgreSQL agree.
 * As in the original, `partial …` states can appear while other tasks are still pending.
 */
export function deriveJobStatus(taskStatuses: readonly TaskStatus[]): JobStatus | null {
  const total = taskStatuses.length;
  if (total === 0) return null;
  const count = (s: TaskStatus) => taskStatuses.filter((t) => t === s).length;
  const fail = count(TaskStatus.fail);
  const success = count(TaskStatus.success);
  const cancelled = count(TaskStatus.cancelled);
  if (fail > 0) return fail === total ? JobStatus.fail : JobStatus.partialFail;
  if (success > 0) return success === total ? JobStatus.success : JobStatus.partialSuccess;
  if (cancelled === total) return JobStatus.cancelled;
  return null;
}
