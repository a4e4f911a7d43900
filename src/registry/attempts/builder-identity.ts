import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import type { BuilderIdentity } from './types.ts';
import type { PackageFamily } from '../../core/terms.ts';

/** A builder by name, or by id (a builder token's). */
export async function builderIdentity(
  db: Kysely<Database>,
  name: string | { id: number },
): Promise<(BuilderIdentity & { platform: string; arch: string; active: boolean; family: PackageFamily }) | null> {
  const row = await db
    .selectFrom('builders')
    .innerJoin('platforms', 'platforms.id', 'builders.platform_id')
    .select([
      'builders.id',
      'builders.name',
      'builders.platform_id',
      'platforms.name as platform',
      'platforms.arch',
      'platforms.active',
      'platforms.family',
    ])
    .where((eb) => (typeof name === 'string' ? eb('builders.name', '=', name) : eb('builders.id', '=', name.id)))
    .executeTakeFirst();
  return row
    ? {
        id: row.id,
        name: row.name,
        platformId: row.platform_id,
        platform: row.platform,
        arch: row.arch,
        active: row.active === 1,
        family: row.family,
      }
    : null;
}

/** Marks a builder as alive with nothing in hand (a daemon's start; what its preflight found). */
export async function idleHeartbeat(
  db: Kysely<Database>,
  builderId: number,
  host: string,
  unableReason: string | null = null,
  sandbox?: string | null,
): Promise<void> {
  await db
    .updateTable('builders')
    .set({
      last_heartbeat_at: Date.now(),
      host,
      unable_reason: unableReason,
      stopped_at: null,
      ...(sandbox !== undefined && { sandbox }),
    })
    .where('id', '=', builderId)
    .execute();
}

/** An idle daemon's heartbeat between its looks for work: one statement. */
export async function touchBuilder(db: Kysely<Database>, builderId: number): Promise<void> {
  await db.updateTable('builders').set({ last_heartbeat_at: Date.now() }).where('id', '=', builderId).execute();
}

/** A daemon that stops cleanly says so: its builder shows as stopped until one starts again. */
export async function builderStopped(db: Kysely<Database>, builderId: number): Promise<void> {
  const now = Date.now();
  await db.updateTable('builders').set({ stopped_at: now, modified_at: now }).where('id', '=', builderId).execute();
}
