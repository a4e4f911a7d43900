import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, pkgforge, spawnPkgforge } from '../helpers/farm.ts';
import { srpm } from '../helpers/srpm.ts';

// What `npm start` runs, as a process on the embedded default: a fresh data directory, nothing else.
describe('pkgforge serve and pkgforge web, as processes', () => {
  let home: string;
  let env: Record<string, string>;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'pkgforge-serve-'));
    env = { PKGFORGE_HOME: home, HOME: home, PKGFORGE_PLATFORM: 'el9' };
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('serve takes a job from submit to success and shows it over HTTP; SIGTERM stops it cleanly', async () => {
    const serve = spawnPkgforge(['serve', '--listen', '127.0.0.1:0'], env);
    try {
      await serve.until(/Submit a job with/);
      const url = serve.output().match(/API: (http:\/\/\S+)\/api\/v1/)![1]!;
      const submitted = await pkgforge(['submit', '--bucket', 'devel', '--id', 'served', srpm('served')], env);
      assert.equal(submitted.code, 0, submitted.stderr);
      const job = await eventually(
        'the job to succeed',
        async () => {
          const r = await fetch(`${url}/api/v1/jobs/served`);
          const body = r.ok
            ? ((await r.json()) as { status: string; tasks: { platform: string; status: string }[] })
            : null;
          return body?.status === 'success' ? body : null;
        },
        120_000,
        200,
      );
      assert.deepEqual(
        job.tasks.map((t) => [t.platform, t.status]),
        [['el9', 'success']],
      );
      serve.child.kill('SIGTERM');
      assert.equal(await serve.exited, 0, serve.output());
    } finally {
      serve.child.kill('SIGKILL');
    }
  });

  it('web serves an initialised farm and stops on SIGTERM', async () => {
    // The web server only checks the schema (it may run as a read-only role): the farm is set up first.
    const init = await pkgforge(['init'], env);
    assert.equal(init.code, 0, init.stderr);
    const web = spawnPkgforge(['web', '--listen', '127.0.0.1:0'], env);
    try {
      await web.until(/PkgForge API at http/);
      const url = web.output().match(/PkgForge API at (http:\/\/\S+)\/api\/v1/)![1]!;
      const r = await fetch(`${url}/api/v1/jobs`);
      assert.equal(r.status, 200);
      const body = (await r.json()) as { jobs: { id: string }[] };
      assert.ok(Array.isArray(body.jobs));
      web.child.kill('SIGTERM');
      assert.equal(await web.exited, 0, web.output());
    } finally {
      web.child.kill('SIGKILL');
    }
  });
});
