import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { insertJob, markJobValid, setJobStatus } from '../../src/registry/jobs.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { farmApp } from '../helpers/web.ts';

describe('the web pages', () => {
  let farm: TestFarm;
  let app: FastifyInstance;
  before(async () => {
    farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*', 'f40/x86_64');
    const m = normaliseManifest(
      {
        id: 'hostile',
        bucket: 'devel',
        platforms: ['auto', 'nosuch'],
        packages: [{ file: 'evil-1-1.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }],
      },
      'x',
    );
    await insertJob(farm.registry, m, {
      submitter: '<img src=x onerror=alert(1)>',
      submittedAt: 1,
      incomingEntry: null,
    });
    await markJobValid(farm.registry, 'hostile', [
      { position: 0, name: '<script>alert("name")</script>', version: '1', release: '1' },
    ]);
    await registerTasks(farm.registry, 'hostile', m.platforms, m.archs, 'rpm');
    await setJobStatus(farm.registry.db, 'hostile', 'registered', '</p><script>alert("reason")</script>');
    app = await farmApp(farm, { uploadMaxBytes: 1024 });
  });
  after(async () => {
    await app.close();
    await farm.dispose();
  });
  const get = async (url: string) => {
    const r = await app.inject({ method: 'GET', url });
    return { status: r.statusCode, type: r.headers['content-type'], body: r.body };
  };

  it('render every page, escaping what users supplied', async () => {
    for (const url of ['/', '/jobs/hostile', '/jobs/hostile/el9-x86_64', '/queue', '/platforms', '/builders']) {
      const r = await get(url);
      assert.equal(r.status, 200, url);
      assert.match(String(r.type), /^text\/html/);
      assert.doesNotMatch(r.body, /<script>alert|<img src=x/, `${url} must escape user input`);
    }
    const job = (await get('/jobs/hostile')).body;
    assert.match(job, /&lt;script&gt;alert\(&quot;name&quot;\)&lt;\/script&gt;/);
    assert.match(job, /Warning: platform &#39;nosuch&#39; is unknown|Warning: platform 'nosuch' is unknown/);
    assert.match(job, /href="\/jobs\/hostile\/el9-x86_64"/);
    assert.match((await get('/')).body, /&lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match((await get('/queue')).body, /no builder of [\w./-]+ is registered/);
  });

  it('answer 404 for what does not exist', async () => {
    assert.equal((await get('/jobs/nope')).status, 404);
    assert.equal((await get('/jobs/hostile/el9-sparc')).status, 404);
    const r = await get('/jobs/%3Cscript%3Ex');
    assert.equal(r.status, 404);
    assert.match(r.body, /There is no job &lt;script&gt;x/);
  });
});
