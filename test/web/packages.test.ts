import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { TestFarm } from '../helpers/farm.ts';
import { el9Farm, finishNextTask, registeredJob } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { farmApp } from '../helpers/web.ts';

for (const dialect of DIALECTS)
  describe(`a package's builds: its page, its API, the jobs page's search (${dialect})`, () => {
    let farm: TestFarm;
    let app: FastifyInstance;
    before(async () => {
      farm = await el9Farm(dialect);
      await registeredJob(farm, 'foo-1', { name: 'foo', version: '1.0' });
      await registeredJob(farm, 'bar-1', { name: 'bar', version: '2.0' });
      await registeredJob(farm, 'foo-2', { name: 'foo', version: '1.1', bucket: 'lcfg' });
      await registeredJob(farm, 'hostile', { name: '<b>x</b>', version: '1' });
      // foo-1 fails on el9: its log is linked.
      assert.equal(await finishNextTask(farm, 'b1', 'fail', 'foo.spec: error: bad'), 'foo-1');
      app = await farmApp(farm);
    });
    after(async () => {
      await app?.close();
      await farm?.dispose();
    });

    it('lists every build of a package, newest first, with versions, buckets, statuses, tasks and durations', async () => {
      const r = await app.inject({ method: 'GET', url: '/api/v1/packages/foo' });
      assert.equal(r.statusCode, 200, r.body);
      const body = r.json();
      assert.deepEqual(
        body.builds.map((b: { job: string; version: string; bucket: string; status: string }) => [
          b.job,
          b.version,
          b.bucket,
          b.status,
        ]),
        [
          ['foo-2', '1.1', 'lcfg', 'registered'],
          ['foo-1', '1.0', 'devel', 'fail'],
        ],
      );
      const [waiting, failed] = body.builds;
      assert.equal(waiting.ended, false);
      assert.equal(failed.ended, true);
      assert.ok(failed.tookMs >= 0);
      assert.equal(failed.tasks[0].status, 'fail');
      assert.equal(failed.tasks[0].reason, 'foo.spec: error: bad');
      assert.equal(failed.tasks[0].log, '/api/v1/jobs/foo-1/tasks/el9/x86_64/files/attempt-1/build.log');
      assert.ok(failed.tasks[0].buildMs >= 0 && failed.tasks[0].totalMs >= 0);
      assert.equal(waiting.tasks[0].log, null);
      assert.equal(waiting.tasks[0].buildMs, null);
      // A page at a time.
      const first = (await app.inject({ method: 'GET', url: '/api/v1/packages/foo?limit=1' })).json();
      assert.deepEqual(
        first.builds.map((b: { job: string }) => b.job),
        ['foo-2'],
      );
      const second = (
        await app.inject({ method: 'GET', url: `/api/v1/packages/foo?limit=1&before=${first.next}` })
      ).json();
      assert.deepEqual(
        second.builds.map((b: { job: string }) => b.job),
        ['foo-1'],
      );
      assert.equal(second.next, null);
    });

    it('answers 404 for a package never built, and 400 for a name that is none', async () => {
      assert.equal((await app.inject({ method: 'GET', url: '/api/v1/packages/nothing' })).statusCode, 404);
      assert.equal((await app.inject({ method: 'GET', url: '/api/v1/packages/..%2Fetc' })).statusCode, 400);
      assert.equal((await app.inject({ method: 'GET', url: '/packages/nothing' })).statusCode, 404);
    });

    it("shows the package's page, links to it from the job page, and finds its jobs by name", async () => {
      const page = (await app.inject({ method: 'GET', url: '/packages/foo' })).body;
      assert.match(page, /<h1>Package foo<\/h1>/);
      assert.ok(page.indexOf('foo-2') < page.indexOf('foo-1'));
      assert.match(page, /href="\/api\/v1\/jobs\/foo-1\/tasks\/el9\/x86_64\/files\/attempt-1\/build.log"/);
      assert.match((await app.inject({ method: 'GET', url: '/jobs/foo-1' })).body, /href="\/packages\/foo"/);
      const search = (await app.inject({ method: 'GET', url: '/?package=foo' })).body;
      assert.match(search, /foo-1/);
      assert.match(search, /foo-2/);
      assert.doesNotMatch(search, /bar-1/);
      const api = (await app.inject({ method: 'GET', url: '/api/v1/jobs?package=bar' })).json();
      assert.deepEqual(
        api.jobs.map((j: { id: string }) => j.id),
        ['bar-1'],
      );
    });

    it('escapes a hostile package name everywhere it is shown', async () => {
      const page = (await app.inject({ method: 'GET', url: `/packages/${encodeURIComponent('<b>x</b>')}` })).body;
      assert.match(page, /Package &lt;b&gt;x&lt;\/b&gt;/);
      assert.doesNotMatch(page, /<b>x<\/b>/);
      const job = (await app.inject({ method: 'GET', url: '/jobs/hostile' })).body;
      assert.match(job, /href="\/packages\/%3Cb%3Ex%3C%2Fb%3E"/);
      assert.doesNotMatch(job, /<b>x<\/b>/);
    });
  });
