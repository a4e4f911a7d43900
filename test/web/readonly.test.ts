import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { insertJob } from '../../src/registry/jobs.ts';
import { openRegistry, type Registry } from '../../src/registry/registry.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { PG_ADMIN_URL } from '../helpers/registries.ts';
import { farmApp } from '../helpers/web.ts';

describe('the web server under a read-only PostgreSQL role', () => {
  let farm: TestFarm;
  let readonly: Registry;
  const role = `pkgforge_web_${process.pid}`;
  const admin = async (query: string) => {
    const c = new pg.Client({ connectionString: (farm.config as { connectionString: string }).connectionString });
    await c.connect();
    try {
      await c.query(query);
    } finally {
      await c.end();
    }
  };
  before(async () => {
    farm = await makeFarm('postgresql');
    await addPlatforms(farm, 'el9/x86_64*');
    const m = normaliseManifest(
      {
        id: 'ro',
        bucket: 'devel',
        packages: [{ file: 'a-1-1.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }],
      },
      'ro',
    );
    await insertJob(farm.registry, m, { submitter: 'u', submittedAt: 1, incomingEntry: null });
    await registerTasks(farm.registry, 'ro', ['auto'], ['all'], 'rpm');
    await admin(`CREATE ROLE ${role} LOGIN`);
    await admin(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
    const url = new URL((farm.config as { connectionString: string }).connectionString);
    url.username = role;
    readonly = await openRegistry({ type: 'postgresql', connectionString: url.toString() }, { checkSchema: true });
  });
  after(async () => {
    await readonly?.close();
    await farm.dispose();
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    await c.query(`DROP ROLE IF EXISTS ${role}`).finally(() => c.end());
  });

  it('serves every page and read route with SELECT rights only', async () => {
    const app = await farmApp(farm, { registry: readonly, uploadMaxBytes: 1024 });
    try {
      for (const url of [
        '/api/v1/jobs',
        '/api/v1/jobs/ro',
        '/api/v1/jobs/ro/tasks/el9/x86_64',
        '/api/v1/queue',
        '/api/v1/platforms',
        '/api/v1/builders',
        '/metrics',
        '/',
        '/jobs/ro',
        '/queue',
      ]) {
        const r = await app.inject({ method: 'GET', url });
        assert.equal(r.statusCode, 200, `${url}: ${r.body.slice(0, 200)}`);
      }
    } finally {
      await app.close();
    }
  });

  it('refuses to start on a schema older than the program, saying what to run', async () => {
    await admin(`DELETE FROM pkgforge_migrations WHERE name = '0005-task-status-index'`);
    const url = new URL((farm.config as { connectionString: string }).connectionString);
    url.username = role;
    await assert.rejects(
      openRegistry({ type: 'postgresql', connectionString: url.toString() }, { checkSchema: true }),
      /schema is older than this PkgForge \(missing 0005-task-status-index\); run `pkgforge init`/,
    );
  });
});
