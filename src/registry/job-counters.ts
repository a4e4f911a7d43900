import { sql, type RawBuilder } from 'kysely';
import { JOB_STATUS_RULES, type CountedOutcome, type TaskCounts } from '../core/job-status.ts';
import { IN_FLIGHT_JOB_STATUSES, JobStatus } from '../core/terms.ts';

/** A count as the update sets it: a number, or an expression over the job row's columns. */
type Count = number | RawBuilder<number>;

/** The job states the task counts never override: the incoming processor's own, and `invalid`. */
const NOT_DERIVED = [...IN_FLIGHT_JOB_STATUSES, JobStatus.invalid];

const COLUMN = { total: 'tasks_total', success: 'tasks_success', fail: 'tasks_fail', cancelled: 'tasks_cancelled' };

/**
 * The `set` of an update of a job row that gives its task counters these values and its status the
 * one they imply, by core's rules (JOB_STATUS_RULES) turned into a CASE, so both databases and the
 * code agree. When the counts say nothing (all tasks waiting or building again, after a retry), a
 * job past registration goes back to `registered`.
 */
export function jobCountersSet(counts: Record<keyof TaskCounts, Count>, now: number) {
  const v = (c: Count) => (typeof c === 'number' ? sql.lit(c) : c);
  const total = v(counts.total);
  const holds = (rule: (typeof JOB_STATUS_RULES)[number]) =>
    rule.all ? sql`${total} > 0 and ${v(counts[rule.count])} = ${total}` : sql`${v(counts[rule.count])} > 0`;
  const status = sql<JobStatus>`case when status in (${sql.join(NOT_DERIVED.map((s) => sql.lit(s)))}) then status ${sql.join(
    JOB_STATUS_RULES.map((r) => sql`when ${holds(r)} then ${sql.lit(r.status)}`),
    sql` `,
  )} when ${total} > 0 then ${sql.lit(JobStatus.registered)} else status end`;
  return {
    tasks_total: total,
    tasks_success: v(counts.success),
    tasks_fail: v(counts.fail),
    tasks_cancelled: v(counts.cancelled),
    status,
    modified_at: now,
  };
}

/** The update's `set` for one more task of the job ending with `outcome` (a finish or a cancel). */
export function oneMoreEnded(outcome: CountedOutcome, now: number, by = 1) {
  const column = (name: keyof TaskCounts) =>
    sql<number>`${sql.ref(COLUMN[name])}${name === outcome ? sql` + ${sql.lit(by)}` : sql``}`;
  return jobCountersSet(
    { total: column('total'), success: column('success'), fail: column('fail'), cancelled: column('cancelled') },
    now,
  );
}
