import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import YAML from 'yaml';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { finishAttempt } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { insertJob } from '../../src/registry/jobs.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { createBuilderToken, createToken } from '../../src/registry/tokens.ts';
import type { RemoteBuilds } from '../../src/web/context.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { farmApp } from '../helpers/web.ts';

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const SOURCE = Buffer.from('the source package of job x\n');
/** A builder's report of a build that failed, with nothing to upload. */
const FAILED = {
  status: 'fail',
  reason: 'x',
  hostname: 'h',
  starttime: 1,
  phases: [],
  success: [],
  failures: [],
  products: [],
};

/** A job with one accepted source for el9/x86_64 only: its accepted copy written as the incoming processor would. */
async function acceptedJob(farm: TestFarm, id: string, platform = 'el9') {
  const m = normaliseManifest(
    {
      id,
      bucket: 'devel',
      platforms: [platform],
      archs: ['x86_64'],
      packages: [
        {
          file: `${id}-1-1.src.rpm`,
          type: 'SRPM',
          size: SOURCE.length,
          sha1sum: createHash('sha1').update(SOURCE).digest('hex'),
          sha256sum: sha256(SOURCE),
        },
      ],
    },
    id,
  );
  mkdirSync(join(farm.accepted, id));
  writeFileSync(join(farm.accepted, id, `${id}-1-1.src.rpm`), SOURCE);
  writeFileSync(join(farm.accepted, id, 'build.yml'), YAML.stringify(m));
  await insertJob(farm.registry, m, { submitter: 'alice', submittedAt: Date.now(), incomingEntry: null });
  await registerTasks(farm.registry, id, m.platforms, m.archs, 'rpm');
}

for (const dialect of DIALECTS) {
  describe(`the remote builders' API on ${dialect}`, () => {
    let farm: TestFarm;
    let app: FastifyInstance;
    let tokenA: string;
    let tokenB: string;
    let userToken: string;
    // The farm's side of builds is not what these tests are about: it settles nothing and records a failure.
    const builds: RemoteBuilds = {
      leaseExpiryMs: 60_000,
      leaseRenewalMs: 20_000,
      productMaxBytes: () => 1024 * 1024,
      uploadMaxBytes: () => 4 * 1024 * 1024,
      settle: async () => false,
      complete: async (claim) => {
        await finishAttempt(farm.registry, claim, 'fail', 'recorded by the test', null);
        return { status: 'fail', reason: 'recorded by the test' };
      },
    };
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*', 'el9/aarch64*', 'el8/x86_64*');
      await addBuilder(farm.registry.db, 'a', 'el9', 'x86_64');
      await addBuilder(farm.registry.db, 'b', 'el9', 'aarch64');
      tokenA = (await createBuilderToken(farm.registry.db, 'a')).token;
      tokenB = (await createBuilderToken(farm.registry.db, 'b')).token;
      userToken = (await createToken(farm.registry.db, 'alice')).token;
      await acceptedJob(farm, 'x');
      app = await farmApp(farm, { builds });
    });
    after(async () => {
      await app.close();
      await farm.dispose();
    });
    const call = async (
      token: string | null,
      method: 'GET' | 'POST' | 'PUT',
      url: string,
      body?: unknown,
      headers = {},
    ) => {
      const r = await app.inject({
        method,
        url: `/api/v1/builder${url}`,
        headers: { ...(token && { authorization: `Bearer ${token}` }), ...headers },
        ...(body !== undefined && (Buffer.isBuffer(body) ? { payload: body } : { payload: body as object })),
      });
      const json = String(r.headers['content-type'] ?? '').startsWith('application/json');
      return { status: r.statusCode, body: json ? (r.json() as any) : null, raw: r.rawPayload };
    };
    const octets = (sum: string) => ({ 'content-type': 'application/octet-stream', 'x-pkgforge-sha256': sum });

    it('takes builder tokens only, and says which builder and platform a token acts for', async () => {
      assert.equal((await call(null, 'GET', '')).status, 401);
      const asUser = await call(userToken, 'GET', '');
      assert.equal(asUser.status, 401);
      assert.match(asUser.body.message, /builder token/);
      const me = await call(tokenA, 'GET', '');
      assert.equal(me.status, 200);
      assert.deepEqual([me.body.name, me.body.platform, me.body.arch], ['a', 'el9', 'x86_64']);
    });

    it('lets a builder claim, fetch, stream its log and upload only within its own attempt', async () => {
      // B's platform has no task: its claim waits, then answers 204; A's gets the job.
      assert.equal((await call(tokenB, 'POST', '/claim', { host: 'hostb[1]', wait: 1 })).status, 204);
      const claimed = await call(tokenA, 'POST', '/claim', { host: 'hosta[1]' });
      assert.equal(claimed.status, 200);
      const { claim, sources, manifest } = claimed.body;
      assert.equal(claim.jobId, 'x');
      assert.match(manifest, /bucket: devel/);
      assert.deepEqual(sources, [{ file: 'x-1-1.src.rpm', size: SOURCE.length, sha256: sha256(SOURCE), sha1: null }]);
      const at = `/tasks/${claim.taskId}/attempts/${claim.attempt}`;

      // A's own attempt: the source, byte for byte; a heartbeat.
      const fetched = await call(tokenA, 'GET', `${at}/sources/x-1-1.src.rpm`);
      assert.equal(fetched.status, 200);
      assert.deepEqual(fetched.raw, SOURCE);
      assert.equal((await call(tokenA, 'GET', `${at}/sources/build.yml`)).status, 404);
      assert.equal((await call(tokenA, 'POST', `${at}/heartbeat`, { renew: true })).body.answer, 'ok');

      // Builder B's token reaches none of it.
      for (const [method, url, body, headers] of [
        ['GET', `${at}/sources/x-1-1.src.rpm`, undefined, {}],
        ['POST', `${at}/heartbeat`, { renew: true }, {}],
        ['PUT', `${at}/files/x-1-1.el9.x86_64.rpm`, Buffer.from('rpm'), octets(sha256('rpm'))],
        ['POST', `${at}/finish`, FAILED, {}],
      ] as const) {
        const r = await call(tokenB, method, url, body, headers);
        assert.equal(r.status, 403, `${method} ${url}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, 'PKGF_ERR_FORBIDDEN');
      }

      // The live log: a retried piece is not written twice; a gap is refused.
      const log = (offset: number, text: string) =>
        call(tokenA, 'POST', `${at}/log?offset=${offset}`, Buffer.from(text), {
          'content-type': 'application/octet-stream',
        });
      assert.equal((await log(0, 'line 1\n')).body.size, 7);
      assert.equal((await log(0, 'line 1\nline 2\n')).body.size, 14);
      assert.equal((await log(20, 'later\n')).status, 400);
      const attemptDir = join(farm.results, 'x', 'el9-x86_64', `attempt-${claim.attempt}`);
      assert.equal(readFileSync(join(attemptDir, 'build.log'), 'utf8'), 'line 1\nline 2\n');

      // A tampered upload is refused and leaves nothing; the true one is kept.
      const rpm = Buffer.from('binary package bytes');
      const tampered = await call(
        tokenA,
        'PUT',
        `${at}/files/x-1-1.el9.x86_64.rpm`,
        rpm,
        octets(sha256('other bytes')),
      );
      assert.equal(tampered.status, 400);
      assert.equal(tampered.body.code, 'PKGF_ERR_CHECKSUM');
      assert.deepEqual(readdirSync(join(attemptDir, '.received')), []);
      assert.equal((await call(tokenA, 'PUT', `${at}/files/../x.rpm`, rpm, octets(sha256(rpm)))).status, 404);
      assert.equal((await call(tokenA, 'PUT', `${at}/files/notes.txt`, rpm, octets(sha256(rpm)))).status, 400);
      const good = await call(tokenA, 'PUT', `${at}/files/x-1-1.el9.x86_64.rpm`, rpm, octets(sha256(rpm)));
      assert.equal(good.status, 201);
      assert.deepEqual(readFileSync(join(attemptDir, '.received', 'x-1-1.el9.x86_64.rpm')), rpm);

      // Handed back: the attempt is stale, its heartbeat says so, and nothing more is taken from it.
      assert.equal((await call(tokenA, 'POST', `${at}/release`, { reason: 'stopping' })).body.released, true);
      assert.equal((await call(tokenA, 'POST', `${at}/heartbeat`, { renew: true })).body.answer, 'lost');
      const late = await call(tokenA, 'PUT', `${at}/files/x-1-1.el9.x86_64.rpm`, rpm, octets(sha256(rpm)));
      assert.equal(late.status, 409);
      assert.equal(late.body.code, 'PKGF_ERR_STALE_ATTEMPT');
      assert.ok(!existsSync(join(attemptDir, 'buildinfo.yml')));
    });

    it('wakes a waiting claim over a real connection as soon as a task of its platform is registered', async () => {
      // Job x, handed back above, is taken first: then nothing waits for el9/x86_64.
      const x = (await call(tokenA, 'POST', '/claim', { host: 'hosta[1]' })).body.claim;
      assert.equal(x.jobId, 'x');
      // One task at a time: while A holds x, it cannot claim another.
      const second = await call(tokenA, 'POST', '/claim', { host: 'hosta[1]' });
      assert.equal(second.status, 409);
      assert.match(second.body.message, /holds attempt \d+ of job x/);
      const finished = await call(tokenA, 'POST', `/tasks/${x.taskId}/attempts/${x.attempt}/finish`, FAILED);
      assert.equal(finished.status, 200);
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      const t0 = Date.now();
      const waiting = fetch(`${url}/api/v1/builder/claim`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokenA}`, 'content-type': 'application/json' },
        body: JSON.stringify({ host: 'hosta[1]', wait: 30 }),
      });
      // Registered while the claim waits: it is answered long before its 30 s, and not at once with a 204.
      setTimeout(() => void acceptedJob(farm, 'y'), 500);
      const r = await waiting;
      assert.equal(r.status, 200);
      assert.equal(((await r.json()) as any).claim.jobId, 'y');
      const took = Date.now() - t0;
      assert.ok(took >= 400 && took < 20_000, `answered after ${took} ms`);
    });

    it('fails a task whose accepted copy cannot be read, instead of handing it out again', async () => {
      const m = normaliseManifest(
        {
          id: 'lost',
          bucket: 'devel',
          platforms: ['el9'],
          archs: ['aarch64'],
          packages: [{ file: 'lost-1-1.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }],
        },
        'lost',
      );
      await insertJob(farm.registry, m, { submitter: 'alice', submittedAt: Date.now(), incomingEntry: null });
      await registerTasks(farm.registry, 'lost', m.platforms, m.archs, 'rpm');
      assert.equal((await call(tokenB, 'POST', '/claim', { host: 'hostb[1]' })).status, 204);
      const task = await farm.registry.db
        .selectFrom('tasks')
        .innerJoin('jobs', 'jobs.id', 'tasks.job_id')
        .select(['tasks.status', 'tasks.reason'])
        .where('jobs.uuid', '=', 'lost')
        .executeTakeFirstOrThrow();
      assert.equal(task.status, 'fail');
      assert.match(task.reason ?? '', /The accepted copy of job lost cannot be read/);
    });

    it('answers a report sent again after it was recorded with the recorded outcome; refuses an upload that is not a byte stream', async () => {
      // A builder of its own platform, so the test stands alone whatever the others left waiting.
      await addBuilder(farm.registry.db, 'c', 'el8', 'x86_64');
      const tokenC = (await createBuilderToken(farm.registry.db, 'c')).token;
      await acceptedJob(farm, 'again', 'el8');
      const { claim } = (await call(tokenC, 'POST', '/claim', { host: 'hostc[1]' })).body;
      assert.equal(claim.jobId, 'again');
      const at = `/tasks/${claim.taskId}/attempts/${claim.attempt}`;
      const rpm = Buffer.from('bytes');
      const untyped = await call(tokenC, 'PUT', `${at}/files/again-1-1.el9.x86_64.rpm`, rpm, {
        'content-type': 'text/plain',
        'x-pkgforge-sha256': sha256(rpm),
      });
      assert.equal(untyped.status, 400, JSON.stringify(untyped.body));
      assert.match(untyped.body.message, /application\/octet-stream/);
      const report = {
        status: 'fail',
        reason: 'it failed',
        hostname: 'hosta',
        starttime: 1,
        phases: ['init', 'build'],
        success: [],
        failures: ['again-1-1.src.rpm'],
        products: [],
      };
      const first = await call(tokenC, 'POST', `${at}/finish`, report);
      assert.deepEqual(first.body, { status: 'fail', reason: 'recorded by the test' });
      // Its answer was lost, say: the same report again is told the same, not that it is stale.
      const again = await call(tokenC, 'POST', `${at}/finish`, report);
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.deepEqual(again.body, first.body);
      // Anything else on that attempt is stale now.
      assert.equal((await call(tokenC, 'POST', `${at}/log?offset=0`, rpm, octets(sha256(rpm)))).status, 409);
    });

    it("keeps a builder's nulls as nulls, refuses control characters in what it says of itself, and holds concurrent uploads to the attempt's total", async () => {
      await addBuilder(farm.registry.db, 'd', 'el8', 'x86_64');
      const tokenD = (await createBuilderToken(farm.registry.db, 'd')).token;
      const started = await call(tokenD, 'POST', '/start', { host: 'hostd[1]', sandbox: null, unable: null });
      assert.equal(started.status, 200);
      const row = await farm.registry.db
        .selectFrom('builders')
        .select(['unable_reason', 'sandbox'])
        .where('name', '=', 'd')
        .executeTakeFirstOrThrow();
      assert.deepEqual([row.unable_reason, row.sandbox], [null, null]);
      for (const host of ['x\u001b[2J', 'two\nlines', 'nul\u0000'])
        assert.equal((await call(tokenD, 'POST', '/start', { host, sandbox: null, unable: null })).status, 400, host);
      await acceptedJob(farm, 'many', 'el8');
      const { claim } = (await call(tokenD, 'POST', '/claim', { host: 'hostd[1]' })).body;
      assert.equal(claim.jobId, 'many');
      const at = `/tasks/${claim.taskId}/attempts/${claim.attempt}`;
      // Six products of 1 MiB at once, against 4 MiB for the attempt: no more than four are kept.
      const mib = Buffer.alloc(1024 * 1024, 7);
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => call(tokenD, 'PUT', `${at}/files/p${i}.rpm`, mib, octets(sha256(mib)))),
      );
      assert.equal(answers.filter((a) => a.status === 201).length, 4, JSON.stringify(answers.map((a) => a.status)));
      assert.ok(answers.filter((a) => a.status !== 201).every((a) => a.status === 413));
      const dir = join(farm.results, 'many', 'el8-x86_64', `attempt-${claim.attempt}`, '.received');
      assert.equal(readdirSync(dir).length, 4);
      // Released: what it received goes with it.
      assert.equal((await call(tokenD, 'POST', `${at}/release`, { reason: 'enough' })).body.released, true);
      assert.equal(existsSync(dir), false);
    });
  });
}
