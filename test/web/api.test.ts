import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { builderIdentity, claimNextTask, finishAttempt, idleHeartbeat } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { insertJob } from '../../src/registry/jobs.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { parseListen } from '../../src/cli/web.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { farmApp } from '../helpers/web.ts';

async function job(farm: TestFarm, id: string, extra: Record<string, unknown> = {}) {
  const m = normaliseManifest(
    {
      id,
      bucket: 'devel',
      packages: [{ file: `${id}-1-1.src.rpm`, type: 'SRPM', size: 10, sha1sum: 'a'.repeat(40) }],
      ...extra,
    },
    id,
  );
  await insertJob(farm.registry, m, { submitter: 'alice', submittedAt: Date.now(), incomingEntry: null });
  await registerTasks(farm.registry, id, m.platforms, m.archs, 'rpm');
}

for (const dialect of DIALECTS) {
  describe(`the HTTP API on ${dialect}`, () => {
    let farm: TestFarm;
    let app: FastifyInstance;
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*', 'el9/aarch64*', 'f40/x86_64');
      await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
      for (let i = 0; i < 7; i++) await job(farm, `job-${i}`);
      await job(farm, 'odd', { platforms: ['auto', 'nosuch', 'f40'], archs: ['all', 'sparc'] });
      await farm.registry.db.updateTable('platforms').set({ active: 0 }).where('name', '=', 'f40').execute();
      app = await farmApp(farm);
    });
    after(async () => {
      await app.close();
      await farm.dispose();
    });
    const get = async (url: string) => {
      const r = await app.inject({ method: 'GET', url });
      return { status: r.statusCode, body: r.json() as any };
    };

    it('lists jobs newest first, page by page with a cursor, and filters them', async () => {
      const first = await get('/api/v1/jobs?limit=3');
      assert.equal(first.status, 200);
      assert.deepEqual(
        first.body.jobs.map((j: { id: string }) => j.id),
        ['odd', 'job-6', 'job-5'],
      );
      const second = await get(`/api/v1/jobs?limit=3&before=${first.body.next}`);
      assert.deepEqual(
        second.body.jobs.map((j: { id: string }) => j.id),
        ['job-4', 'job-3', 'job-2'],
      );
      const last = await get(
        `/api/v1/jobs?limit=3&before=${(await get(`/api/v1/jobs?limit=3&before=${second.body.next}`)).body.next ?? 0}`,
      );
      assert.equal(last.body.next, null);
      assert.equal(
        (await get('/api/v1/jobs?status=registered&submitter=alice&bucket=devel&platform=el9')).body.jobs.length,
        8,
      );
      assert.equal((await get('/api/v1/jobs?platform=f40')).body.jobs.length, 1);
      const bogus = await get('/api/v1/jobs?status=bogus');
      assert.deepEqual([bogus.status, bogus.body.code], [400, 'PKGF_ERR_USAGE']);
      assert.match(bogus.body.message, /querystring\/status must be equal to one of the allowed values/);
      const tooMany = await get('/api/v1/jobs?limit=100000');
      assert.deepEqual([tooMany.status, tooMany.body.code], [400, 'PKGF_ERR_USAGE']);
      assert.match(tooMany.body.message, /querystring\/limit must be <= 500/);
    });

    it('shows a job with packages, tasks and warnings about what it names', async () => {
      const { status, body } = await get('/api/v1/jobs/odd');
      assert.equal(status, 200);
      assert.equal(body.packages[0].file, 'odd-1-1.src.rpm');
      assert.deepEqual(
        body.tasks.map((t: { platform: string; arch: string }) => `${t.platform}/${t.arch}`),
        ['el9/aarch64', 'el9/x86_64', 'f40/x86_64'],
      );
      assert.deepEqual(body.warnings, [
        "platform 'nosuch' is unknown",
        "platform 'f40' is not active",
        "architecture 'sparc' is unknown",
      ]);
      const missing = await get('/api/v1/jobs/nope');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'PKGF_ERR_NOT_FOUND');
    });

    it('shows a task with its attempts and result files', async () => {
      const me = (await builderIdentity(farm.registry.db, 'b1'))!;
      const claim = (await claimNextTask(farm.registry, me, 'h[1]', 60_000))!;
      await finishAttempt(farm.registry, claim, 'fail', 'it broke', null);
      const dir = join(farm.results, claim.jobId, 'el9-x86_64');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'buildinfo.yml'), 'x: 1\n');
      const { status, body } = await get(`/api/v1/jobs/${claim.jobId}/tasks/el9/x86_64`);
      assert.equal(status, 200);
      assert.equal(body.status, 'fail');
      assert.deepEqual(
        body.attempts.map((a: { number: number; outcome: string; reason: string }) => [a.number, a.outcome, a.reason]),
        [[1, 'fail', 'it broke']],
      );
      assert.deepEqual(body.files, [{ name: 'buildinfo.yml', size: 5 }]);
      for (const [path, task] of [
        ['el9/sparc', 'el9/sparc'],
        ['..%2F..%2Fetc/x', '../../etc/x'],
      ] as const) {
        const none = await get(`/api/v1/jobs/${claim.jobId}/tasks/${path}`);
        assert.deepEqual(
          [none.status, none.body.code, none.body.message],
          [404, 'PKGF_ERR_NOT_FOUND', `Job ${claim.jobId} has no task for ${task}`],
        );
      }
    });

    it('tells why tasks wait in the queue, and which builders are healthy', async () => {
      // b1 sends an idle daemon's heartbeat: running, with nothing in hand.
      await idleHeartbeat(farm.registry.db, (await builderIdentity(farm.registry.db, 'b1'))!.id, 'h[1]');
      const queue = (await get('/api/v1/queue')).body as {
        platform: string;
        arch: string;
        why: string;
        waiting: { position: number; job: string }[];
      }[];
      const x86 = queue.find((q) => q.platform === 'el9' && q.arch === 'x86_64')!;
      assert.ok(x86.waiting.length > 0);
      assert.deepEqual(
        x86.waiting.map((w) => w.position),
        x86.waiting.map((_, i) => i + 1),
      );
      assert.equal(x86.why, 'waiting for an idle builder to claim it');
      const arm = queue.find((q) => q.arch === 'aarch64')!;
      assert.equal(arm.why, 'no builder of el9/aarch64 is registered');
      const builders = (await get('/api/v1/builders')).body as { name: string; healthy: boolean }[];
      assert.deepEqual(
        builders.map((b) => [b.name, b.healthy]),
        [['b1', true]],
      );
      assert.deepEqual(
        (await get('/api/v1/platforms')).body.map((p: { name: string; active: boolean }) => `${p.name}:${p.active}`),
        ['el9:true', 'el9:true', 'f40:false'],
      );
    });

    it('serves its OpenAPI document', async () => {
      const { status, body } = await get('/api/v1/openapi.json');
      assert.equal(status, 200);
      assert.equal(body.openapi.startsWith('3.'), true);
      assert.ok(body.paths['/api/v1/jobs/{id}']);
      const docs = await app.inject({ method: 'GET', url: '/api/docs' });
      assert.equal(docs.statusCode, 200);
      assert.match(String(docs.headers['content-type']), /^text\/html/);
      assert.match(docs.body, /<title>Swagger UI<\/title>/);
    });
  });
}

describe('--listen', () => {
  it('takes HOST:PORT and refuses anything else', () => {
    assert.deepEqual(parseListen('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(parseListen('[::1]:9000'), { host: '::1', port: 9000 });
    assert.throws(() => parseListen('8080'), /HOST:PORT/);
    assert.throws(() => parseListen('h:70000'), /HOST:PORT/);
  });
});
