import { sql, type Kysely } from 'kysely';
import { TaskStatus } from '../core/terms.ts';
import type { Database } from './schema.ts';

/** A wait for a builder: from queued until claimed (or cancelled); `until` null while it waits. */
export interface QueueWait {
  from: number;
  until: number | null;
  /** How many tasks waited so (waiting tasks come grouped by `step`). */
  count: number;
}

/** A build that ended: when, how long it ran, how it ended. */
export interface EndedBuild {
  endedAt: number;
  ms: number;
  outcome: string;
}

/**
 * What the queue's last hours are drawn from, out of what the registry keeps anyway: the waits
 * of tasks that changed since `since` or still wait (those grouped by queue time into `step`
 * slots, so a long queue is a few rows, not one per task), and the builds that ended since (the
 * newest `maxBuilds`). A task queued again keeps only its latest wait.
 */
export async function queueHistory(
  db: Kysely<Database>,
  since: number,
  step: number,
  maxBuilds = 5000,
): Promise<{ waits: QueueWait[]; builds: EndedBuild[] }> {
  // A literal, not a parameter: PostgreSQL must see the grouped expression and the selected one as one.
  const slot = sql<number>`tasks.queued_at - (tasks.queued_at % ${sql.lit(Math.max(1, Math.round(step)))})`;
  const waiting = await db
    .selectFrom('tasks')
    .select([slot.as('slot'), (eb) => eb.fn.countAll<number>().as('count')])
    .where('status', '=', TaskStatus.needsBuild)
    .groupBy(slot)
    .execute();
  const claimed = await db
    .selectFrom('tasks')
    .leftJoin('attempts', (j) =>
      j.onRef('attempts.task_id', '=', 'tasks.id').onRef('attempts.number', '=', 'tasks.attempt'),
    )
    .select(['tasks.queued_at', 'tasks.modified_at', 'attempts.started_at'])
    .where('tasks.modified_at', '>=', since)
    .where('tasks.status', '!=', TaskStatus.needsBuild)
    .execute();
  const builds = await db
    .selectFrom('attempts')
    .select(['started_at', 'ended_at', 'outcome'])
    .where('ended_at', '>=', since)
    .orderBy('ended_at', 'desc')
    .limit(maxBuilds)
    .execute();
  return {
    waits: [
      ...waiting.map((w) => ({ from: Number(w.slot), until: null, count: Number(w.count) })),
      ...claimed.map((t) => ({
        from: t.queued_at,
        // Claimed by the attempt that started after it was queued, else it left the queue otherwise.
        until: t.started_at !== null && t.started_at >= t.queued_at ? t.started_at : t.modified_at,
        count: 1,
      })),
    ],
    builds: builds.map((b) => ({ endedAt: b.ended_at!, ms: b.ended_at! - b.started_at, outcome: b.outcome ?? '' })),
  };
}
