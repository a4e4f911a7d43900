import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
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
  return new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
}
