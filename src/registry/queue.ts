import { sql, type Kysely } from 'kysely';
import { TaskStatus } from '../core/terms.ts';
import type { Database } from './schema.ts';
import { countBuilders, whyWaiting } from '../core/builder-health.ts';

/** A waiting task in its platform's queue. */
export interface QueuedTask {
  position: number;
  taskId: number;
  jobId: string;
  bucket: string;
  submitter: string | null;
  queuedAt: number;
  /** The attempt about to start (1 for a task never built). */
  nextAttempt: number;
}

/** One platform's queue and why its tasks wait. */
export interface PlatformQueue {
  platform: string;
  arch: string;
  active: boolean;
  /** The first waiting tasks, in claim order (at most the limit asked for). */
  waiting: QueuedTask[];
  /** All waiting tasks of the platform. */
  waitingTotal: number;
  building: number;
  builders: { total: number; healthy: number; busy: number; unable: number };
  /** Why the waiting tasks wait, for a person: the answer to "why is my job still waiting?". */
  why: string | null;
}

/**
 * Every platform's queue: waiting tasks in claim order with their position, and why they wait.
 * A builder is healthy when it sent a heartbeat within `healthyWithinMs` and can build.
 */
export async function listQueues(
  db: Kysely<Database>,
  nowMs: number,
  healthyWithinMs: number,
  limitPerPlatform = 50,
): Promise<PlatformQueue[]> {
  const platforms = await db.selectFrom('platforms').selectAll().orderBy('name').orderBy('arch').execute();
  const builders = await db
    .selectFrom('builders')
    .select(['platform_id', 'last_heartbeat_at', 'unable_reason', 'current_task_id'])
    .execute();
  const counts = await db
    .selectFrom('tasks')
    .select(['platform_id', 'status', sql<number>`count(*)`.as('n')])
    .where('status', 'in', [TaskStatus.building, TaskStatus.needsBuild])
    .groupBy(['status', 'platform_id'])
    .execute();
  const count = (platformId: number, status: string) =>
    Number(counts.find((c) => c.platform_id === platformId && c.status === status)?.n ?? 0);
  const queues: PlatformQueue[] = [];
  for (const p of platforms) {
    const waiting = await db
      .selectFrom('tasks')
      .innerJoin('jobs', 'jobs.id', 'tasks.job_id')
      .select(['tasks.id', 'jobs.uuid', 'jobs.bucket', 'jobs.submitter', 'tasks.queued_at', 'tasks.attempt'])
      .where('tasks.platform_id', '=', p.id)
      .where('tasks.status', '=', TaskStatus.needsBuild)
      .orderBy('tasks.queued_at')
      .orderBy('tasks.id')
      .limit(limitPerPlatform)
      .execute();
    const mine = builders
      .filter((b) => b.platform_id === p.id)
      .map((b) => ({
        lastHeartbeatAt: b.last_heartbeat_at,
        unableReason: b.unable_reason,
        busy: b.current_task_id !== null,
      }));
    const counts = countBuilders(mine, nowMs, healthyWithinMs);
    const why =
      waiting.length > 0
        ? whyWaiting(p.active === 1, counts, mine.find((b) => b.unableReason !== null)?.unableReason ?? null)
        : null;
    queues.push({
      platform: p.name,
      arch: p.arch,
      active: p.active === 1,
      waiting: waiting.map((t, i) => ({
        position: i + 1,
        taskId: t.id,
        jobId: t.uuid,
        bucket: t.bucket,
        submitter: t.submitter,
        queuedAt: t.queued_at,
        nextAttempt: t.attempt + 1,
      })),
      waitingTotal: count(p.id, TaskStatus.needsBuild),
      building: count(p.id, TaskStatus.building),
      builders: counts,
      why,
    });
  }
  return queues;
}
