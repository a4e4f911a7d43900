import { JobStatus, TaskStatus } from './terms.ts';

/** How many of a job's tasks there are, and how many ended each way (the rest wait or build). */
export interface TaskCounts {
  total: number;
  success: number;
  fail: number;
  cancelled: number;
}

/** The task outcomes a job keeps a count of. */
export type CountedOutcome = 'success' | 'fail' | 'cancelled';

/**
 * The original's `update_job_status` trigger (§5.2) as rules over a job's task counts, in order:
 * the first that holds decides. `all` means every task ended that way, otherwise at least one did.
 * As in the original, `partial …` states can appear while other tasks are still pending.
 *
 * Kept as data so the registry can turn the same rules into SQL (registry/job-counters.ts): a task's
 * finish updates its job's counters and status in one statement, and both databases agree.
 */
export const JOB_STATUS_RULES: readonly { count: CountedOutcome; all: boolean; status: JobStatus }[] = [
  { count: 'fail', all: true, status: JobStatus.fail },
  { count: 'fail', all: false, status: JobStatus.partialFail },
  { count: 'success', all: true, status: JobStatus.success },
  { count: 'success', all: false, status: JobStatus.partialSuccess },
  { count: 'cancelled', all: true, status: JobStatus.cancelled },
];

/** The job status implied by its task counts, or `null` when they say nothing new (no tasks, or no rule holds). */
export function jobStatusOf(counts: TaskCounts): JobStatus | null {
  if (counts.total === 0) return null;
  const rule = JOB_STATUS_RULES.find((r) => (r.all ? counts[r.count] === counts.total : counts[r.count] > 0));
  return rule?.status ?? null;
}

export function countTasks(taskStatuses: readonly TaskStatus[]): TaskCounts {
  const count = (s: TaskStatus) => taskStatuses.filter((t) => t === s).length;
  return {
    total: taskStatuses.length,
    success: count(TaskStatus.success),
    fail: count(TaskStatus.fail),
    cancelled: count(TaskStatus.cancelled),
  };
}

/** The job status implied by its tasks' statuses, or `null` when they say nothing new. */
export function deriveJobStatus(taskStatuses: readonly TaskStatus[]): JobStatus | null {
  return jobStatusOf(countTasks(taskStatuses));
}

/**
 * The status a job is shown with: `building` while any of its tasks builds (the registry's status
 * says what its ended tasks came to, and a registered job with a build under way looks idle).
 */
export function shownJobStatus(status: JobStatus, taskStatuses: readonly TaskStatus[]): JobStatus | 'building' {
  return taskStatuses.includes(TaskStatus.building) ? 'building' : status;
}
