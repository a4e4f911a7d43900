import { sql, type Kysely } from 'kysely';
import { storableText } from '../../core/names.ts';
import type { Registry } from '../registry.ts';
import type { Database } from '../schema.ts';

/** now + ms on the database's clock. */
export function leaseUntil(registry: Registry, ms: number) {
  return sql<number>`${sql.raw(registry.caps.nowMsSql)} + ${Math.round(ms)}`;
}

/** The `set` that ends an attempt (its log directory kept when none is given). */
export function attemptEnd(outcome: string, reason: string | null, logDir: string | null, now = Date.now()) {
  return { ended_at: now, outcome, reason: storableText(reason), ...(logDir !== null && { log_dir: logDir }) };
}

export async function closeAttempt(
  trx: Kysely<Database>,
  taskId: number,
  number: number,
  outcome: string,
  reason: string | null,
  logDir: string | null,
  now = Date.now(),
): Promise<void> {
  await trx
    .updateTable('attempts')
    .set(attemptEnd(outcome, reason, logDir, now))
    .where('task_id', '=', taskId)
    .where('number', '=', number)
    .where('ended_at', 'is', null)
    .execute();
}
