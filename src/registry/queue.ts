import { sql, type Kysely } from 'kysely';
import { TaskStatus } from '../core/terms.ts';
import type { Database } from './schema.ts';
import { countBuilders, whyWaiting, type PlatformBuilders } from '../core/builder-health.ts';

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
  builders: PlatformBuilders;
  /** Why the waiting tasks wait, for a person: the answer to "why is my job still waiting?". */
  why: string | null;
}

/** How many tasks of each platform wait and build: `platformId → { waiting, building }`. */
export type QueueCounts = Map<number, { waiting: number; building: number }>;

/**
 * Counts each platform's waiting and building tasks. The one query of the queue that reads as many
 * rows as there are waiting tasks (an index range of 25,000 entries takes milliseconds), so a busy
 * web server shares one reading of the queue between its requests (web/shared-queues.ts).
 */
export async function countQueuedTasks(db: Kysely<Database>): Promise<QueueCounts> {
  const rows = await db
    .selectFrom('tasks')
    .select(['platform_id', 'status', sql<number>`count(*)`.as('n')])
    .where('status', 'in', [TaskStatus.building, TaskStatus.needsBuild])
    .groupBy(['status', 'platform_id'])
    .execute();
  const counts: QueueCounts = new Map();
  for (const r of rows) {
    const c = counts.get(r.platform_id) ?? { waiting: 0, building: 0 };
    if (r.status === TaskStatus.needsBuild) c.waiting = Number(r.n);
    else c.building = Number(r.n);
    counts.set(r.platform_id, c);
  }
  return counts;
}

/**
 * Every platform's queue: waiting tasks in claim order with their position, and why they wait.
 * A builder runs when it sent a heartbeat within `healthyWithinMs` and did not stop (core/builder-health.ts). Each
 * platform's first waiting tasks are read through the claim's own index, `limitPerPlatform` rows
 * each, all in one statement; the totals are counted (countQueuedTasks).
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
    .select(['platform_id', 'last_heartbeat_at', 'unable_reason', 'current_task_id', 'stopped_at'])
    .execute();
  const totals = await countQueuedTasks(db);
  const firstWaiting = (platformId: number) =>
    db
      .selectFrom('tasks')
      .innerJoin('jobs', 'jobs.id', 'tasks.job_id')
      .select([
        'tasks.platform_id',
        'tasks.id',
        'jobs.uuid',
        'jobs.bucket',
        'jobs.submitter',
        'tasks.queued_at',
        'tasks.attempt',
      ])
      .where('tasks.platform_id', '=', platformId)
      .where('tasks.status', '=', TaskStatus.needsBuild)
      .orderBy('tasks.queued_at')
      .orderBy('tasks.id')
      .limit(limitPerPlatform);
  // One round trip for every platform: each branch is its own bounded walk of the queue index.
  const waitingRows =
    platforms.length === 0
      ? []
      : await db
          .selectFrom(
            platforms
              .slice(1)
              .reduce(
                (q, p) => q.unionAll(db.selectFrom(firstWaiting(p.id).as('w')).selectAll()),
                db.selectFrom(firstWaiting(platforms[0]!.id).as('w')).selectAll(),
              )
              .as('waiting'),
          )
          .selectAll()
          .execute();
  const queues: PlatformQueue[] = [];
  for (const p of platforms) {
    const waiting = waitingRows
      .filter((t) => t.platform_id === p.id)
      .sort((a, b) => a.queued_at - b.queued_at || a.id - b.id);
    const mine = builders
      .filter((b) => b.platform_id === p.id)
      .map((b) => ({
        lastHeartbeatAt: b.last_heartbeat_at,
        stoppedAt: b.stopped_at,
        unableReason: b.unable_reason,
        currentTaskId: b.current_task_id,
      }));
    const counted = countBuilders(mine, nowMs, healthyWithinMs);
    const why =
      waiting.length > 0 ? whyWaiting(`${p.name}/${p.arch}`, p.active === 1, mine, nowMs, healthyWithinMs) : null;
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
      // Counted in a statement of its own, so a claim in between could make it fewer than are shown.
      waitingTotal: Math.max(totals.get(p.id)?.waiting ?? 0, waiting.length),
      building: totals.get(p.id)?.building ?? 0,
      builders: counted,
      why,
    });
  }
  return queues;
}
