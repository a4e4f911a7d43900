import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/** An incoming entry the processor refused before a job record could exist for it. */
export interface RefusedEntry {
  id: number;
  /** The directory's name, printable. */
  entry: string;
  submitter: string | null;
  reason: string;
  refusedAt: number;
}

/**
 * Records a refused entry (once per directory, however many passes see it before it is gone).
 * Names and reasons are cut to what the columns hold.
 */
export async function recordRefusedEntry(
  db: Kysely<Database>,
  e: { entry: string; entryKey: string; submitter: string | null; reason: string; refusedAt: number },
): Promise<void> {
  await db
    .insertInto('refused_entries')
    .values({
      entry: e.entry.slice(0, 300),
      entry_key: e.entryKey.slice(0, 100),
      submitter: e.submitter?.slice(0, 50) ?? null,
      reason: e.reason.slice(0, 4000),
      refused_at: e.refusedAt,
    })
    .onConflict((oc) => oc.column('entry_key').doNothing())
    .execute();
}

/** Refused entries, newest first, of one submitter or all; `before` is the cursor of the next page. */
export async function listRefusedEntries(
  db: Kysely<Database>,
  filter: { submitter?: string; limit?: number; before?: number } = {},
): Promise<{ entries: RefusedEntry[]; next: number | null }> {
  const limit = filter.limit ?? 50;
  let q = db.selectFrom('refused_entries').select(['id', 'entry', 'submitter', 'reason', 'refused_at']);
  if (filter.submitter !== undefined) q = q.where('submitter', '=', filter.submitter);
  if (filter.before !== undefined) q = q.where('id', '<', filter.before);
  const rows = await q
    .orderBy('id', 'desc')
    .limit(limit + 1)
    .execute();
  const page = rows.slice(0, limit).map((r) => ({
    id: r.id,
    entry: r.entry,
    submitter: r.submitter,
    reason: r.reason,
    refusedAt: r.refused_at,
  }));
  return { entries: page, next: rows.length > limit ? page[page.length - 1]!.id : null };
}
