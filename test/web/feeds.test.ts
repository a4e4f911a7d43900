import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { setJobStatus } from '../../src/registry/jobs.ts';
import { cancelTasks } from '../../src/registry/tasks.ts';
import { createToken } from '../../src/registry/tokens.ts';
import type { TestFarm } from '../helpers/farm.ts';
import { el9Farm, finishNextTask, registeredJob } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { farmApp } from '../helpers/web.ts';

for (const dialect of DIALECTS)
  describe(`Atom feeds of finished jobs, per bucket and per submitter (${dialect})`, () => {
    let farm: TestFarm;
    let app: FastifyInstance;
    before(async () => {
      farm = await el9Farm(dialect);
      await registeredJob(farm, 'built', { bucket: 'devel', submitter: 'alice' });
      await registeredJob(farm, 'waiting', { bucket: 'devel', submitter: 'alice' });
      await registeredJob(farm, 'dropped', { bucket: 'devel', submitter: 'bob' });
      await registeredJob(farm, 'other-bucket', { bucket: 'lcfg', submitter: 'alice' });
      await registeredJob(farm, 'broken', { bucket: 'devel', submitter: 'alice' });
      // A reason with what XML cannot hold (a control character, a build log's colour codes) and markup.
      assert.equal(await finishNextTask(farm, 'b1', 'fail', 'error: <b>&"quoted"</b>\x01\x1b[31m'), 'built');
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
        const forbidden = [...r.body].filter((c) => c < ' ' && c !== '\t' && c !== '\n' && c !== '\r');
        assert.deepEqual(forbidden, [], 'a character XML cannot hold is in the feed');
        assert.match(r.body, /&lt;\/b&gt;\uFFFD\uFFFD\[31m/);
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
