import { Kysely, PostgresDialect, type PostgresPool } from 'kysely';
import pg from 'pg';
import type { RegistryConfig } from '../registry-config.ts';
import type { RegistryCapabilities } from '../capabilities.ts';
import type { Database } from '../schema.ts';

export const postgresCapabilities: RegistryCapabilities = {
  backend: 'postgresql',
  idColumn: 'serial',
  writeLockAtBegin: false,
  supportsSkipLocked: true,
  supportsListenNotify: true,
  supportsDataModifyingCte: true,
  supportsRowLocks: true,
  nowMsSql: '(extract(epoch from clock_timestamp()) * 1000)::bigint',
};

const INT8_OID = 20;

type PostgresConfig = Extract<RegistryConfig, { type: 'postgresql' }>;

/** node-postgres connection options from our configuration (unset keys fall back to PG* variables). */
function connectionOptions(config: PostgresConfig): pg.ClientConfig {
  return {
    ...(config.connectionString !== undefined && { connectionString: config.connectionString }),
    ...(config.host !== undefined && { host: config.host }),
    ...(config.port !== undefined && { port: config.port }),
    ...(config.database !== undefined && { database: config.database }),
    ...(config.user !== undefined && { user: config.user }),
    ...(config.password !== undefined && { password: config.password }),
  };
}

export function openPostgres(config: PostgresConfig, poolSize = 10, idleTimeoutMs = 10_000): Kysely<Database> {
  const pool = new pg.Pool({
    ...connectionOptions(config),
    max: poolSize,
    idleTimeoutMillis: idleTimeoutMs,
    connectionTimeoutMillis: 10_000,
    // Our bigints are epoch milliseconds and byte counts, well inside 2^53: read them as numbers.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID
          ? (v: string) => Number(v)
          : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its connection emits 'error'; without a listener Node would exit.
  pool.on('error', () => {});
  // So does a client checked out of the pool (the pool removes its own listener then) whose socket
  // breaks between or during queries, as in an outage: the query in hand gets the error anyway.
  pool.on('connect', (client) => client.on('error', () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: preparedStatements(pool) }) });
}

/** At most this many query texts become prepared statements; any others are sent as they are. */
const MAX_PREPARED = 500;

/**
 * The pool as Kysely sees it, with each query that has parameters sent as a named prepared
 * statement: the server parses and plans a claim or a finish once per connection instead of at
 * every call (half the cost of a claim on a busy farm). Queries without parameters (BEGIN, COMMIT,
 * migrations' DDL) are sent as they are, so no plan outlives a schema change made on the connection.
 */
function preparedStatements(pool: pg.Pool): PostgresPool {
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (name === undefined && names.size < MAX_PREPARED) names.set(text, (name = `pkgforge_${names.size}`));
    return name;
  };
  return {
    connect: async () => {
      const client = await pool.connect();
      return {
        query: ((query: string | pg.Submittable, parameters?: unknown[]) => {
          if (typeof query !== 'string') return client.query(query);
          const name = parameters && parameters.length > 0 ? nameOf(query) : undefined;
          return client.query({ text: query, values: parameters, ...(name !== undefined && { name }) });
        }) as never,
        release: () => client.release(),
      };
    },
    end: () => pool.end(),
  };
}

/** What a listener tells its owner besides notifications. */
export interface ListenEvents {
  /** The connection broke: notifications may be missed until `onRestored`. */
  onLost: (err: Error) => void;
  /** Listening again after a loss; notifications sent meanwhile were missed, so look at once. */
  onRestored: () => void;
}

/** Reconnects are tried this often at most, so a listener is back within a second of the server. */
const RECONNECT_MAX_MS = 1000;
/**
 * A quiet connection is checked this often, so a peer that vanished without a reset is noticed
 * (TCP keep-alive notices sooner on most networks). Every idle builder pays one query per check.
 */
const CHECK_EVERY_MS = 60_000;
const CHECK_TIMEOUT_MS = 10_000;

/**
 * A dedicated connection that LISTENs on a channel and calls `onNotify` with each payload. When the
 * connection breaks (the server restarted, the network went away) it reconnects with back-off and
 * LISTENs again, telling `events`. Returns a function that closes it for good. Never throws: a
 * first connection that fails is retried like a lost one.
 */
export async function listenPostgres(
  config: PostgresConfig,
  channel: string,
  onNotify: (payload: string) => void,
  events: ListenEvents,
): Promise<() => Promise<void>> {
  let client: pg.Client | null = null;
  let closed = false;
  let delay = 100;
  let retryTimer: NodeJS.Timeout | undefined;
  let wasLost = false;

  const lost = (c: pg.Client, err: Error) => {
    if (closed || c !== client) return;
    client = null;
    c.end().catch(() => {});
    if (!wasLost) events.onLost(err);
    wasLost = true;
    scheduleConnect();
  };
  const scheduleConnect = () => {
    if (closed) return;
    retryTimer = setTimeout(() => void connectOnce(), delay);
    delay = Math.min(delay * 2, RECONNECT_MAX_MS);
  };
  const connectOnce = async () => {
    // A connect into a network that drops packets would otherwise wait for the kernel's SYN timeout (minutes).
    const c = new pg.Client({
      ...connectionOptions(config),
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      connectionTimeoutMillis: 5000,
    });
    c.on('notification', (msg) => onNotify(msg.payload ?? ''));
    c.on('error', (err) => lost(c, err));
    c.on('end', () => lost(c, new Error('the notification connection was closed')));
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
    } catch (err) {
      c.end().catch(() => {});
      if (!wasLost) events.onLost(err as Error);
      wasLost = true;
      return scheduleConnect();
    }
    if (closed) return void c.end().catch(() => {});
    client = c;
    delay = 100;
    if (wasLost) events.onRestored();
    wasLost = false;
  };
  const check = setInterval(() => {
    const c = client;
    if (!c) return;
    const timeout = setTimeout(
      () => lost(c, new Error('the notification connection stopped answering')),
      CHECK_TIMEOUT_MS,
    );
    c.query('select 1').then(
      () => clearTimeout(timeout),
      (err: Error) => (clearTimeout(timeout), lost(c, err)),
    );
  }, CHECK_EVERY_MS);
  check.unref();
  await connectOnce();
  return async () => {
    closed = true;
    clearTimeout(retryTimer);
    clearInterval(check);
    await client?.end().catch(() => {});
  };
}
