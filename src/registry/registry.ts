import { sql, type Kysely } from 'kysely';
import type { RegistryConfig } from '../config/load-config.ts';
import type { RegistryCapabilities } from './capabilities.ts';
import { listenPostgres, openPostgres, postgresCapabilities } from './dialect/postgres.ts';
import { openSqlite, sqliteCapabilities } from './dialect/sqlite.ts';
import { migrateRegistry } from './migrations.ts';
import type { Database } from './schema.ts';

/** An open registry: the query builder, what the backend can do, and how to close it. */
export interface Registry {
  readonly db: Kysely<Database>;
  readonly caps: RegistryCapabilities;
  close(): Promise<void>;
  /**
   * Calls `onTasks` whenever tasks become claimable (registered, retried or requeued), with the
   * platform ids, until the returned function is called. Null where the backend cannot notify
   * (SQLite): daemons poll instead.
   */
  listenForTasks: ((onTasks: (platformIds: number[]) => void, onError: (err: Error) => void) => Promise<() => Promise<void>>) | null;
}

/** The channel on which new claimable tasks are announced. */
export const TASKS_CHANNEL = 'pkgforge_tasks';

/** Announces claimable tasks of these platforms; inside a transaction, delivered at commit. No-op on SQLite. */
export async function notifyTasks(registry: Registry, trx: Kysely<Database>, platformIds: Iterable<number>): Promise<void> {
  if (!registry.caps.supportsListenNotify) return;
  const payload = [...new Set(platformIds)].join(',');
  if (payload) await sql`select pg_notify(${TASKS_CHANNEL}, ${payload})`.execute(trx);
}

export interface OpenRegistryOptions {
  /** Run migrations before returning (daemons and `pkgforge init` do). */
  migrate?: boolean;
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
}

/** Opens the configured registry. The only place that imports a concrete dialect. */
export async function openRegistry(config: RegistryConfig, options: OpenRegistryOptions = {}): Promise<Registry> {
  const [db, caps] =
    config.type === 'sqlite' ? [openSqlite(config.path), sqliteCapabilities] : [openPostgres(config, options.poolSize), postgresCapabilities];
  const listenForTasks: Registry['listenForTasks'] =
    config.type === 'postgresql'
      ? (onTasks, onError) =>
          listenPostgres(config, TASKS_CHANNEL, (payload) => onTasks(payload.split(',').map(Number).filter((n) => Number.isInteger(n))), onError)
      : null;
  const registry: Registry = { db, caps, close: () => db.destroy(), listenForTasks };
  if (options.migrate) {
    try {
      await migrateRegistry(db, caps);
    } catch (err) {
      await db.destroy();
      throw err;
    }
  }
  return registry;
}

/**
 * Runs `fn` in a transaction that will write. On SQLite the transaction takes the write lock at
 * BEGIN (IMMEDIATE), so two processes never deadlock upgrading a read lock; on PostgreSQL it is a
 * plain transaction.
 */
export async function writeTransaction<T>(registry: Registry, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  if (registry.caps.beginWrite === 'BEGIN') return registry.db.transaction().execute(fn);
  return registry.db.connection().execute(async (conn) => {
    await sql.raw(registry.caps.beginWrite).execute(conn);
    try {
      const result = await fn(conn);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (err) {
      await sql`ROLLBACK`.execute(conn).catch(() => {});
      throw err;
    }
  });
}
