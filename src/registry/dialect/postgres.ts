import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { RegistryConfig } from '../../config/load-config.ts';
import type { RegistryCapabilities } from '../capabilities.ts';
import type { Database } from '../schema.ts';

export const postgresCapabilities: RegistryCapabilities = {
  backend: 'postgresql',
  idColumn: 'serial',
  beginWrite: 'BEGIN',
  supportsSkipLocked: true,
  supportsListenNotify: true,
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

export function openPostgres(config: PostgresConfig, poolSize = 10): Kysely<Database> {
  const pool = new pg.Pool({
    ...connectionOptions(config),
    max: poolSize,
    connectionTimeoutMillis: 10_000,
    // Our bigints are epoch milliseconds and byte counts, well inside 2^53: read them as numbers.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its connection emits 'error'; without a listener Node would exit.
  pool.on('error', () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/**
 * A dedicated connection that LISTENs on a channel and calls `onNotify` with each payload.
 * Returns a function that closes it. Reconnects are the caller's business (it polls anyway).
 */
export async function listenPostgres(
  config: PostgresConfig,
  channel: string,
  onNotify: (payload: string) => void,
  onError: (err: Error) => void,
): Promise<() => Promise<void>> {
  const client = new pg.Client(connectionOptions(config));
  client.on('notification', (msg) => onNotify(msg.payload ?? ''));
  client.on('error', onError);
  await client.connect();
  await client.query(`LISTEN ${channel}`);
  return async () => {
    await client.end().catch(() => {});
  };
}
