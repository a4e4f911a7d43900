import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.ts';
import { listBuilders, type Builder } from './builders.ts';

/** What /metrics shows, read in four grouped queries. */
export interface FarmCounts {
  jobs: { status: string; n: number }[];
  tasks: { platform: string; arch: string; status: string; n: number }[];
  /** Finished attempts by outcome, with the milliseconds they took together. */
  attempts: { outcome: string; n: number; ms: number }[];
  builders: Builder[];
}

export async function farmCounts(db: Kysely<Database>): Promise<FarmCounts> {
  const jobs = await db
    .selectFrom('jobs')
    .select(['status', sql<number>`count(*)`.as('n')])
    .groupBy('status')
    .execute();
  const tasks = await db
    .selectFrom('tasks')
    .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
    .select(['platforms.name', 'platforms.arch', 'tasks.status', sql<number>`count(*)`.as('n')])
    .groupBy(['platforms.name', 'platforms.arch', 'tasks.status'])
    .execute();
  const attempts = await db
    .selectFrom('attempts')
    .select(['outcome', sql<number>`count(*)`.as('n'), sql<number>`sum(ended_at - started_at)`.as('ms')])
    .where('ended_at', 'is not', null)
    .groupBy('outcome')
    .execute();
  const builders = await listBuilders(db);
  return {
    jobs: jobs.map((r) => ({ status: r.status, n: Number(r.n) })),
    tasks: tasks.map((r) => ({ platform: r.name, arch: r.arch, status: r.status, n: Number(r.n) })),
    attempts: attempts.map((r) => ({ outcome: r.outcome ?? 'unknown', n: Number(r.n), ms: Number(r.ms ?? 0) })),
    builders,
  };
}
