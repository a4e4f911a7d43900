import type { Kysely } from 'kysely';
import { builderNameProblem, printable } from '../core/names.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { findPlatform } from './platforms.ts';
import type { Database } from './schema.ts';

export interface Builder {
  id: number;
  name: string;
  platform: string;
  arch: string;
  platformActive: boolean;
  currentTaskId: number | null;
  /** The job of the task in hand, by its id, and which attempt. */
  currentJob: { id: string; attempt: number } | null;
  /** The daemon's instance as it last said (`host[pid]`): core/builder-health.ts parseInstance. */
  host: string | null;
  lastHeartbeatAt: number | null;
  /** Why the builder's daemon cannot build (its preflight failed), or null. */
  unableReason: string | null;
  /** How its daemon confines builds: `bwrap`, `none` (unsandboxed), or null before it first started. */
  sandbox: string | null;
  /** When its daemon last stopped cleanly, null while one runs. */
  stoppedAt: number | null;
}

export async function listBuilders(db: Kysely<Database>): Promise<Builder[]> {
  const rows = await db
    .selectFrom('builders')
    .innerJoin('platforms', 'platforms.id', 'builders.platform_id')
    .leftJoin('tasks', 'tasks.id', 'builders.current_task_id')
    .leftJoin('jobs', 'jobs.id', 'tasks.job_id')
    .select([
      'builders.id',
      'builders.name',
      'platforms.name as platform',
      'platforms.arch',
      'platforms.active',
      'builders.current_task_id',
      'builders.host',
      'builders.last_heartbeat_at',
      'builders.unable_reason',
      'builders.sandbox',
      'builders.stopped_at',
      'jobs.uuid as current_job',
      'tasks.attempt as current_attempt',
    ])
    .orderBy('builders.name')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    platform: r.platform,
    arch: r.arch,
    platformActive: r.active === 1,
    currentTaskId: r.current_task_id,
    currentJob: r.current_job === null ? null : { id: r.current_job, attempt: r.current_attempt ?? 0 },
    host: r.host,
    lastHeartbeatAt: r.last_heartbeat_at,
    unableReason: r.unable_reason,
    sandbox: r.sandbox,
    stoppedAt: r.stopped_at,
  }));
}

export async function findBuilder(db: Kysely<Database>, name: string): Promise<Builder | null> {
  return (await listBuilders(db)).find((b) => b.name === name) ?? null;
}

/** Adds a builder for an existing platform; an inactive platform is allowed (the caller warns). */
export async function addBuilder(db: Kysely<Database>, name: string, platform: string, arch: string): Promise<Builder> {
  const problem = builderNameProblem(name);
  if (problem)
    throw new PkgForgeError(ErrorCode.invalidName, `Cannot add a builder named '${printable(name)}': ${problem}`);
  const p = await findPlatform(db, platform, arch);
  if (!p)
    throw new PkgForgeError(
      ErrorCode.notFound,
      `Failed to find the platform '${platform}/${arch}', that must be registered and activated first.`,
    );
  const existing = await db.selectFrom('builders').select('id').where('name', '=', name).executeTakeFirst();
  if (existing) throw new PkgForgeError(ErrorCode.exists, `Cannot add a builder named '${name}', it already exists.`);
  const now = Date.now();
  const row = await db
    .insertInto('builders')
    .values({ name, platform_id: p.id, current_task_id: null, created_at: now, modified_at: now })
    .returning(['id'])
    .executeTakeFirstOrThrow();
  return {
    id: row.id,
    name,
    platform,
    arch,
    platformActive: p.active,
    currentTaskId: null,
    currentJob: null,
    host: null,
    lastHeartbeatAt: null,
    unableReason: null,
    sandbox: null,
    stoppedAt: null,
  };
}

export async function deleteBuilder(db: Kysely<Database>, name: string): Promise<void> {
  const result = await db.deleteFrom('builders').where('name', '=', name).executeTakeFirst();
  if (Number(result.numDeletedRows) === 0) {
    throw new PkgForgeError(
      ErrorCode.notFound,
      `Cannot remove a builder named '${name}', it does not appear to exist.`,
    );
  }
}
