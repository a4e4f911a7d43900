import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';

export interface AttemptRow {
  number: number;
  builder: string;
  host: string;
  startedAt: number;
  endedAt: number | null;
  outcome: string | null;
  reason: string | null;
  logDir: string | null;
}

export async function listAttempts(db: Kysely<Database>, taskId: number): Promise<AttemptRow[]> {
  const rows = await db.selectFrom('attempts').selectAll().where('task_id', '=', taskId).orderBy('number').execute();
  return rows.map((r) => ({
    number: r.number,
    builder: r.builder,
    host: r.host,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    outcome: r.outcome,
    reason: r.reason,
    logDir: r.log_dir,
  }));
}
