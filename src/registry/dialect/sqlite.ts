import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type SqliteDatabase, type SqliteStatement } from 'kysely';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RegistryCapabilities } from '../capabilities.ts';
import type { Database } from '../schema.ts';

export const sqliteCapabilities: RegistryCapabilities = {
  backend: 'sqlite',
  idColumn: 'integer',
  writeLockAtBegin: true,
  // SQLite has one writer at a time: a claim inside BEGIN IMMEDIATE cannot race another.
  supportsSkipLocked: false,
  supportsListenNotify: false,
  supportsDataModifyingCte: false,
  supportsRowLocks: false,
  nowMsSql: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
};

export function openSqlite(path: string): Kysely<Database> {
  mkdirSync(dirname(path), { recursive: true });
  const database = new SQLite(path, { timeout: 10_000 });
  // WAL lets readers (web, CLI) run beside the one writer; NORMAL sync is durable in WAL mode
  // except for the last transactions on power loss, which the incoming processor's files survive.
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = NORMAL');
  database.pragma('foreign_keys = ON');
  database.pragma('busy_timeout = 10000');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: cachedStatements(database) }) });
}

/** At most this many statements are kept prepared. */
const MAX_CACHED = 500;

/**
 * The database as Kysely sees it, keeping each query text's prepared statement for the next call:
 * preparing costs more than running a claim's statements (a fifth of a claim on a busy farm).
 * better-sqlite3 prepares a kept statement again by itself when the schema changes.
 */
function cachedStatements(database: SQLite.Database): SqliteDatabase {
  const kept = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare: (sql: string) => {
      let statement = kept.get(sql);
      if (statement === undefined) {
        statement = database.prepare(sql) as unknown as SqliteStatement;
        if (kept.size >= MAX_CACHED) kept.delete(kept.keys().next().value!);
        kept.set(sql, statement);
      }
      return statement;
    },
  };
}
