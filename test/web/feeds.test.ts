import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { builderIdentity, claimNextTask, finishAttempt } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { insertJob, setJobStatus } from '../../src/registry/jobs.ts';
import { cancelTasks, registerTasks } from '../../src/registry/tasks.ts';
import { createToken } from '../../src/registry/tokens.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { farmApp } from '../helpers/web.ts';

async function job(farm: TestFarm, id: string, bucket: string, submitter: string) {
  const m = normaliseManifest(
    { id, bucket, packages: [{ file: `${id}-1-1.src.rpm`, type: 'SRPM', size: 10, sha1sum: 'a'.repeat(40) }] },
    id,
  );
  await insertJob(farm.registry, m, { submitter, submittedAt: Date.now(), incomingEntry: null });
  await registerTasks(farm.registry, id, m.platforms, m.archs, 'rpm');
}

for (const dialect of DIALECTS)
  describe(`Atom feeds of finished jobs, per bucket and per submitter (${dialect})`, () => {
    let farm: TestFarm;
    let app: FastifyInstance;
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*');
      await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
      await job(farm, 'built', 'devel', 'alice');
      await job(farm, 'waiting', 'devel', 'alice');
      await job(farm, 'dropped', 'devel', 'bob');
      await job(farm, 'other-bucket', 'lcfg', 'alice');
      await job(farm, 'broken', 'devel', 'alice');
      const me = (await builderIdentity(farm.registry.db, 'b1'))!;
      const claim = (await claimNextTask(farm.registry, me, 'h', 60_000))!;
      assert.equal(claim.jobId, 'built');
      await finishAttempt(farm.registry, claim, 'fail', 'error: <b>&"quoted"</b>', null);
      await cancelTasks(farm.registry, 'dropped');
      await cancelTasks(farm.registry, 'other-bucket');
      await setJobStatus(farm.registry.db, 'broken', 'invalid', 'build.yml: no packages');
      app = await farmApp(farm);
    });
    after(async () => {
      await app?.close();
      await farm?.dispose();
    });

    const entries = (feed: string) => [...feed.matchAll(/<entry>[\s\S]*?<\/entry>/g)].map((m) => m[0]);
    const ids = (feed: string) => entries(feed).map((e) => /<title>Job (\S+):/.exec(e)![1]);

    it("a bucket's feed has its finished jobs, newest first, and none still waiting", async () => {
      const r = await app.inject({ method: 'GET', url: '/feeds/buckets/devel', headers: { host: 'farm.example.org' } });
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['content-type'], 'application/atom+xml; charset=utf-8');
      assert.match(r.body, /^<\?xml version="1.0" encoding="utf-8"\?>\n<feed xmlns="http:\/\/www.w3.org\/2005\/Atom">/);
      assert.deepEqual(ids(r.body), ['broken', 'dropped', 'built']);
      const built = entries(r.body)[2]!;
      assert.match(built, /<link rel="alternate" type="text\/html" href="http:\/\/farm.example.org\/jobs\/built"\/>/);
      assert.match(built, /<author><name>alice<\/name><\/author>/);
      assert.match(built, /<category term="fail"\/>/);
      assert.match(built, /<updated>\d{4}-\d\d-\d\dT[\d:.]+Z<\/updated>/);
      assert.match(
        r.body,
        /<link rel="self" type="application\/atom\+xml" href="http:\/\/farm.example.org\/feeds\/buckets\/devel"\/>/,
      );
    });

    it("a submitter's feed has their finished jobs in every bucket", async () => {
      const r = await app.inject({ method: 'GET', url: '/feeds/submitters/alice' });
      assert.deepEqual(ids(r.body), ['broken', 'other-bucket', 'built']);
      const empty = await app.inject({ method: 'GET', url: '/feeds/submitters/nobody' });
      assert.equal(empty.statusCode, 200);
      assert.deepEqual(entries(empty.body), []);
      assert.equal((await app.inject({ method: 'GET', url: '/feeds/buckets/..%2Fetc' })).statusCode, 400);
    });

    it('escapes what users wrote, and uses public_url for links when it is set', async () => {
      const closed = await farmApp(farm, { publicUrl: 'https://farm.example.org/pf' });
      try {
        const r = await closed.inject({ method: 'GET', url: '/feeds/buckets/devel' });
        assert.doesNotMatch(r.body, /<b>|&"/);
        assert.match(r.body, /el9\/x86_64: fail: error: &lt;b&gt;&amp;&quot;quoted&quot;&lt;\/b&gt;/);
        assert.match(r.body, /href="https:\/\/farm.example.org\/pf\/jobs\/built"/);
      } finally {
        await closed.close();
      }
    });

    it('needs a token with read_requires_token', async () => {
      const closed = await farmApp(farm, { readRequiresToken: true });
      try {
        assert.equal((await closed.inject({ method: 'GET', url: '/feeds/buckets/devel' })).statusCode, 401);
        const { token } = await createToken(farm.registry.db, 'reader');
        const auth = `Basic ${Buffer.from(`reader:${token}`).toString('base64')}`;
        const r = await closed.inject({ method: 'GET', url: '/feeds/buckets/devel', headers: { authorization: auth } });
        assert.equal(r.statusCode, 200);
      } finally {
        await closed.close();
      }
    });
  });
