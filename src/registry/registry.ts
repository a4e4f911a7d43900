import { EventEmitter } from 'node:events';
import { sql, type Kysely } from 'kysely';
import type { RegistryConfig } from './registry-config.ts';
import type { RegistryCapabilities } from './capabilities.ts';
import type { ListenEvents } from './dialect/postgres.ts';
import { assertSchemaCurrent, migrateRegistry, schemaIsCurrent } from './migrations.ts';
import { WakeFile } from './wake-file.ts';
import type { Database } from './schema.ts';

/** An open registry: the query builder, what the backend can do, and how to close it. */
export interface Registry {
  readonly db: Kysely<Database>;
  readonly caps: RegistryCapabilities;
  close(): Promise<void>;
  /**
   * Calls `onTasks` whenever tasks become claimable (registered, retried or requeued), with the
   * platform ids (or `any` when the platforms are not known), until the returned function is
   * called. On PostgreSQL this hears every process (LISTEN/NOTIFY). On SQLite it hears this process
   * (`pkgforge serve` runs the incoming processor and a builder together) and, through a wake file
   * beside the database that every announcement writes (registry/wake-file.ts), the others. A
   * listener that loses its channel (a broken connection, a wake file that cannot be watched) says
   * so through `events`, and again when it is back (notifications may have been missed meanwhile).
   */
  listenForTasks(onTasks: (platformIds: number[] | 'any') => void, events: ListenEvents): Promise<() => Promise<void>>;
  /** Tells this process's listeners, and (SQLite) the other processes', that tasks became claimable. */
  announceTasks(platformIds: number[]): void;
}

/** The channel on which new claimable tasks are announced. */
export const TASKS_CHANNEL = 'pkgforge_tasks';

/** Announcements made inside a SQLite write transaction, told once it has committed. */
const afterCommit = new WeakMap<Kysely<Database>, Set<number>>();

/**
 * Announces claimable tasks of these platforms. Inside a transaction they are told at commit, so
 * a daemon that wakes up sees the tasks: PostgreSQL's server holds NOTIFY until then, and SQLite's
 * write transactions (writeTransaction) tell theirs after COMMIT.
 */
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
  const pending = afterCommit.get(trx);
  if (pending) ids.forEach((id) => pending.add(id));
  else registry.announceTasks(ids);
}

export interface OpenRegistryOptions {
  /** Run migrations before returning (daemons and `pkgforge init` do). */
  migrate?: boolean;
  /** Only check that the schema is current, writing nothing (for read-only database roles). */
  checkSchema?: boolean;
  /** Connections in the PostgreSQL pool. */
  poolSize?: number;
  /** How long an unused pooled PostgreSQL connection stays open (node-postgres's default: 10 s). */
  idleTimeoutMs?: number;
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
      postgres.openPostgres(config, options.poolSize, options.idleTimeoutMs),
      postgres.postgresCapabilities,
      postgres.listenPostgres,
    ];
  }
  const localTasks = new EventEmitter();
  const wakeFile = config.type === 'sqlite' ? new WakeFile(`${config.path}-tasks`) : null;
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
      : async (onTasks, events) => {
          localTasks.on('tasks', onTasks);
          const unwatch = wakeFile!.watch(() => onTasks('any'), events);
          return async () => {
            localTasks.off('tasks', onTasks);
            unwatch();
          };
        };
  const announceTasks = (ids: number[]) => {
    // After the caller's own work, as a notification would arrive.
    setImmediate(() => localTasks.emit('tasks', ids));
    wakeFile?.touch();
  };
  const registry: Registry = { db, caps, close: () => db.destroy(), listenForTasks, announceTasks };
  if (options.migrate || options.checkSchema) {
    try {
      if (!options.migrate) await assertSchemaCurrent(db, caps);
      else if (!(await schemaIsCurrent(db, caps))) await migrateRegistry(db, caps);
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
  const announced = new Set<number>();
  const result = await registry.db.connection().execute(async (conn) => {
    await sql`BEGIN IMMEDIATE`.execute(conn);
    afterCommit.set(conn, announced);
    try {
      const result = await fn(conn);
      await sql`COMMIT`.execute(conn);
      return result;
    } catch (err) {
      announced.clear();
      await sql`ROLLBACK`.execute(conn).catch(() => {});
      throw err;
    } finally {
      afterCommit.delete(conn);
    }
  });
  if (announced.size > 0) registry.announceTasks([...announced]);
  return result;
}
