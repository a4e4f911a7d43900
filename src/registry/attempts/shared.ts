import { sql, type Kysely } from 'kysely';
import type { Registry } from '../registry.ts';
import type { Database } from '../schema.ts';

/** now + ms on the database's clock. */
export function leaseUntil(registry: Registry, ms: number) {
  return sql<number>`${sql.raw(registry.caps.nowMsSql)} + ${Math.round(ms)}`;
}

export async function closeAttempt(
  trx: Kysely<Database>,
  taskId: number,
  number: number,
  outcome: string,
  reason: string | null,
  logDir: string | null,
): Promise<void> {
  await trx
    .updateTable('attempts')
    .set({ ended_at: Date.now(), outcome, reason, ...(logDir !== null && { log_dir: logDir }) })
    .where('task_id', '=', taskId)
    .where('number', '=', number)
    .where('ended_at', 'is', null)
    .execute();
}
