import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { openRegistry } from '../../src/registry/registry.ts';
import { transientRegistryError, withRegistryRetry } from '../../src/registry/retry.ts';
import { PG_ADMIN_URL, makeRegistryConfig } from '../helpers/registries.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';

/** The error a promise rejects with (the test fails if it resolves). */
async function errorOf(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail('expected an error');
}

const withClient = async <T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => {});
  }
};

// Every error here is produced by the real server, driver or socket, not made up.
describe('transient registry errors, as the real PostgreSQL and SQLite give them', () => {
  let db: Awaited<ReturnType<typeof makeRegistryConfig>>;
  let url: string;
  before(async () => {
    db = await makeRegistryConfig('postgresql');
    url = (db.config as { connectionString: string }).connectionString;
  });
  after(async () => db.drop());

  it('connection refused: nothing listens where the registry should be', async () => {
    const proxy = await new TcpProxy({ host: '127.0.0.1', port: 5432 }).start();
    const through = proxy.urlFor(url);
    await proxy.stop();
    const err = await errorOf(withClient(through, (c) => c.query('select 1')));
    assert.equal(transientRegistryError(err), 'connection refused');
  });

  it('connection refused, under our own error: a migration that could not connect', async () => {
    const proxy = await new TcpProxy({ host: '127.0.0.1', port: 5432 }).start();
    const through = proxy.urlFor(url);
    await proxy.stop();
    const err = await errorOf(openRegistry({ type: 'postgresql', connectionString: through }, { migrate: true }));
    assert.match(err.message, /Failed to migrate the registry/);
    assert.equal(transientRegistryError(err), 'connection refused');
  });

  it('connection reset in the middle of a query', async () => {
    const proxy = await new TcpProxy({ host: '127.0.0.1', port: 5432 }).start();
    try {
      const err = await errorOf(
        withClient(proxy.urlFor(url), async (c) => {
          const q = c.query('select pg_sleep(5)');
          setImmediate(() => proxy.resetAll());
          await q;
        }),
      );
      assert.ok(transientRegistryError(err), `${(err as { code?: string }).code}: ${err.message}`);
    } finally {
      await proxy.stop();
    }
  });

  it('admin shutdown: the server ends the session (pg_terminate_backend, a fast stop)', async () => {
    const err = await errorOf(
      withClient(url, async (c) => {
        const pid = (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        // Handled at once: it fails while the admin connection is still at work.
        const q = c.query('select pg_sleep(5)').then(
          () => null,
          (e: Error) => e,
        );
        await withClient(PG_ADMIN_URL, (admin) => admin.query('select pg_terminate_backend($1)', [pid]));
        const e = await q;
        if (e) throw e;
      }),
    );
    assert.equal((err as { code?: string }).code, '57P01');
    assert.equal(transientRegistryError(err), 'server shutting down or starting');
  });

  it('the database is not accepting connections (SQLSTATE 55000)', async () => {
    const name = new URL(url).pathname.slice(1);
    await withClient(PG_ADMIN_URL, (a) => a.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`));
    try {
      const err = await errorOf(withClient(url, (c) => c.query('select 1')));
      assert.equal((err as { code?: string }).code, '55000');
      assert.equal(transientRegistryError(err), 'not accepting connections');
    } finally {
      await withClient(PG_ADMIN_URL, (a) => a.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`));
    }
  });

  it('too many connections (SQLSTATE 53300)', async () => {
    // A role's connection limit applies to everyone but superusers; 0 makes the first one too many.
    const role = `pkgforge_limited_${process.pid}`;
    await withClient(PG_ADMIN_URL, (a) => a.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`));
    try {
      const u = new URL(url);
      u.username = role;
      const err = await errorOf(withClient(u.toString(), (c) => c.query('select 1')));
      assert.equal((err as { code?: string }).code, '53300');
      assert.equal(transientRegistryError(err), 'too many connections');
    } finally {
      await withClient(PG_ADMIN_URL, (a) => a.query(`DROP ROLE ${role}`));
    }
  });

  it('serialization failure between two serializable transactions', async () => {
    await withClient(url, (c) =>
      c
        .query('create table skew (id int primary key, on_call boolean)')
        .then(() => c.query('insert into skew values (1, true), (2, true)')),
    );
    const err = await errorOf(
      withClient(url, (a) =>
        withClient(url, async (b) => {
          for (const c of [a, b]) await c.query('begin isolation level serializable');
          // Each reads both rows and takes one off call: write skew, which one of them must lose.
          for (const c of [a, b]) await c.query('select count(*) from skew where on_call');
          await a.query('update skew set on_call = false where id = 1');
          await b.query('update skew set on_call = false where id = 2');
          await a.query('commit');
          await b.query('commit');
        }),
      ),
    );
    assert.equal((err as { code?: string }).code, '40001');
    assert.equal(transientRegistryError(err), 'serialization failure');
  });

  it('SQLite busy: another process holds the write lock longer than the busy timeout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pkgforge-busy-'));
    const holder = new SQLite(join(dir, 'r.db'));
    const other = new SQLite(join(dir, 'r.db'), { timeout: 20 });
    try {
      holder.pragma('journal_mode = WAL');
      holder.exec('create table t (x); begin immediate; insert into t values (1)');
      let err: unknown;
      try {
        other.exec('begin immediate');
      } catch (e) {
        err = e;
      }
      assert.equal((err as { code?: string }).code, 'SQLITE_BUSY');
      assert.equal(transientRegistryError(err), 'database busy');
    } finally {
      holder.close();
      other.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('permanent errors are not retried: a constraint, a syntax error', async () => {
    const errs = await withClient(url, async (c) => [
      await errorOf(c.query('selec 1')),
      await errorOf(
        c.query('create table u (id int primary key)').then(() => c.query('insert into u values (1), (1)')),
      ),
    ]);
    assert.deepEqual(
      errs.map((e) => (e as { code?: string }).code),
      ['42601', '23505'],
    );
    for (const e of errs) assert.equal(transientRegistryError(e), null);
    let calls = 0;
    await errorOf(withRegistryRetry(async () => (calls++, Promise.reject(errs[0]))));
    assert.equal(calls, 1);
  });
});

describe('withRegistryRetry', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });

  it('retries a transient failure until the operation succeeds, telling each retry with its kind', async () => {
    let calls = 0;
    const kinds: string[] = [];
    const value = await withRegistryRetry(async () => (++calls < 3 ? Promise.reject(refused) : 'ok'), {
      delayMs: 1,
      onRetry: (_e, _n, _ms, kind) => kinds.push(kind),
    });
    assert.equal(value, 'ok');
    assert.deepEqual(kinds, ['connection refused', 'connection refused']);
  });

  it('gives up once the deadline has passed, with the last error', async () => {
    let calls = 0;
    const start = Date.now();
    const err = await errorOf(
      withRegistryRetry(async () => (calls++, Promise.reject(refused)), {
        attempts: Infinity,
        until: start + 150,
        delayMs: 10,
        maxDelayMs: 40,
      }),
    );
    assert.equal(err, refused);
    assert.ok(calls >= 3, `tried ${calls} times`);
    assert.ok(Date.now() - start < 1000);
  });

  it('stops waiting when its signal aborts, after one try', async () => {
    let calls = 0;
    const ac = new AbortController();
    ac.abort();
    await errorOf(
      withRegistryRetry(async () => (calls++, Promise.reject(refused)), { attempts: Infinity, signal: ac.signal }),
    );
    assert.equal(calls, 1);
  });
});
