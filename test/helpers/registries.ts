import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { RegistryConfig } from '../../src/config/load-config.ts';
import { openRegistry, type Registry } from '../../src/registry/registry.ts';

/** The PostgreSQL server the tests use; CI starts it. A test that needs it fails when it is missing. */
export const PG_ADMIN_URL = process.env.PKGFORGE_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface TestRegistry {
  config: RegistryConfig;
  registry: Registry;
  /** Closes the registry and drops its database or file. */
  dispose(): Promise<void>;
}

export const DIALECTS = ['sqlite', 'postgresql'] as const;
export type Dialect = (typeof DIALECTS)[number];

let counter = 0;

/** A fresh, migrated registry of the given kind: a new SQLite file, or a new PostgreSQL database. */
export async function makeRegistryConfig(
  dialect: Dialect,
): Promise<{ config: RegistryConfig; drop: () => Promise<void> }> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'pkgforge-db-'));
    return {
      config: { type: 'sqlite', path: join(dir, 'registry.db') },
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `pkgforge_test_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    config: { type: 'postgresql', connectionString: url.toString() },
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export async function makeRegistry(dialect: Dialect): Promise<TestRegistry> {
  const { config, drop } = await makeRegistryConfig(dialect);
  const registry = await openRegistry(config, { migrate: true });
  return {
    config,
    registry,
    dispose: async () => {
      await registry.close();
      await drop();
    },
  };
}
