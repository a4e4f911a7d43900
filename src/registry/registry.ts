import { EventEmitter } from 'node:events';
import { sql, type Kysely } from 'kysely';
import type { RegistryConfig } from './registry-config.ts';
import type { RegistryCapabilities } from './capabilities.ts';
import type { ListenEvents } from './dialect/postgres.ts';
import { assertSchemaCurrent, migrateRegistry } from './migrations.ts';
import type { Database } from './schema.ts';

/** An open registry: the query builder, what the backend can do, and how to close it. */
export interface Registry {
  readonly db: Kysely<Database>;
  readonly caps: RegistryCapabilities;
  close(): Promise<void>;
  /**
   * Calls `onTasks` whenever tasks become claimable (registered, retried or requeued), with the
   * platform ids, until the returned function is called. On PostgreSQL this hears every process
   * (LISTEN/NOTIFY); on SQLite only this process (`pkgforge serve` runs the incoming processor
   * and a builder together), so daemons there also poll. A PostgreSQL listener whose connection
   * breaks reconnects by itself and says so through `events` (notifications may have been missed).
   */
  listenForTasks(onTasks: (platformIds: number[]) => void, events: ListenEvents): Promise<() => Promise<void>>;
  /** Tells this process's listeners (PostgreSQL's are told by the server). */
  readonly localTasks: EventEmitter;
}

/** The channel on which new claimable tasks are announced. */
export const TASKS_CHANNEL = 'pkgforge_tasks';

/** Announces claimable tasks of these platforms; inside a transaction, delivered at commit. */
export async function notifyTasks(
  registry: Registry,
  trx: Kysely<Database>,
  platformIds: Iterable<number>,
): Promise<void> {
  const ids = [...new Set(platformIds)];
  if (ids.length === 0) return;
  if (registry.caps.supportsListenNotify) {
    await sql`select pg_notify(${TASKS_CHANNEL}, ${ids.join(',')})`.execute(trx);
    return;
  }
  // SQLite: this process's listeners only. A claim they start queues behind this transaction on
  // the one connection, so it sees the committed tasks.
  setImmediate(() => registry.localTasks.emit('tasks', ids));
}

export interface OpenRegistryOptions {
  /** Run migrations before returning (daemons and `pkgforge init` do). */
  migrate?: boolean;
  /** Only check that the schema is current, writing nothing (for read-only database roles). */
  checkSchema?: boolean;
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
}

/** Opens the configured registry. The only place that imports a concrete dialect. */
export async function openRegistry(config: RegistryConfig, options: OpenRegistryOptions = {}): Promise<Registry> {
  // Each dialect (and its driver) is loaded only when used: a SQLite farm never loads pg, and
  // commands start faster.
  let db: Kysely<Database>;
  let caps: RegistryCapabilities;
  let listenPostgres: typeof import('./dialect/postgres.ts').listenPostgres | null = null;
  if (config.type === 'sqlite') {
    const sqlite = await import('./dialect/sqlite.ts');
    [db, caps] = [sqlite.openSqlite(config.path), sqlite.sqliteCapabilities];
  } else {
    const postgres = await import('./dialect/postgres.ts');
    [db, caps, listenPostgres] = [
      postgres.openPostgres(config, options.poolSize),
      postgres.postgresCapabilities,
      postgres.listenPostgres,
    ];
  }
  const localTasks = new EventEmitter();
  const listenForTasks: Registry['listenForTasks'] =
    config.type === 'postgresql' && listenPostgres
      ? (onTasks, events) =>
          listenPostgres!(
            config,
            TASKS_CHANNEL,
            (payload) =>
              onTasks(
                payload
                  .split(',')
                  .map(Number)
                  .filter((n) => Number.isInteger(n)),
              ),
            events,
          )
      : async (onTasks) => {
          localTasks.on('tasks', onTasks);
          return async () => void localTasks.off('tasks', onTasks);
        };
  const registry: Registry = { db, caps, close: () => db.destroy(), listenForTasks, localTasks };
  if (options.migrate || options.checkSchema) {
    try {
      await (options.migrate ? migrateRegistry(db, caps) : assertSchemaCurrent(db, caps));
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
  if (!registry.caps.writeLockAtBegin) return registry.db.transaction().execute(fn);
  return registry.db.connection().execute(async (conn) => {
    await sql`BEGIN IMMEDIATE`.execute(conn);
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
