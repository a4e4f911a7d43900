import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { builderIdentity, claimNextTask, finishAttempt, type Claim } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { insertJob } from '../../src/registry/jobs.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { farmApp } from '../helpers/web.ts';

describe('result downloads, the live log and metrics', () => {
  let farm: TestFarm;
  let app: FastifyInstance;
  let base: string;
  let claim: Claim;
  let attemptDir: string;
  before(async () => {
    farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*');
    await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
    const m = normaliseManifest(
      {
        id: 'j1',
        bucket: 'devel',
        packages: [{ file: 'a-1-1.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }],
      },
      'j1',
    );
    await insertJob(farm.registry, m, { submitter: null, submittedAt: 1, incomingEntry: null });
    await registerTasks(farm.registry, 'j1', ['auto'], ['all'], 'rpm');
    claim = (await claimNextTask(farm.registry, (await builderIdentity(farm.registry.db, 'b1'))!, 'h[1]', 60_000))!;
    attemptDir = join(farm.results, 'j1', 'el9-x86_64', 'attempt-1');
    mkdirSync(attemptDir, { recursive: true });
    writeFileSync(join(attemptDir, 'build.log'), 'line one\n');
    writeFileSync(join(farm.results, 'j1', 'el9-x86_64', 'a-1-1.noarch.rpm'), 'rpm bytes');
    writeFileSync(join(farm.root, 'secret'), 'secret');
    app = await farmApp(farm);
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    await farm.dispose();
  });

  it('downloads result files, and never anything outside the results directory', async () => {
    const rpm = await fetch(`${base}/api/v1/jobs/j1/tasks/el9/x86_64/files/a-1-1.noarch.rpm`);
    assert.equal(rpm.status, 200);
    assert.equal(rpm.headers.get('content-type'), 'application/x-rpm');
    assert.equal(await rpm.text(), 'rpm bytes');
    const log = await fetch(`${base}/api/v1/jobs/j1/tasks/el9/x86_64/files/attempt-1/build.log`);
    assert.match(await log.text(), /line one/);
    for (const bad of [
      '../../../secret',
      '..%2F..%2F..%2Fsecret',
      'attempt-1/../../../../secret',
      '%2e%2e/%2e%2e/secret',
      'nothere',
    ]) {
      const r = await fetch(`${base}/api/v1/jobs/j1/tasks/el9/x86_64/files/${bad}`);
      assert.ok(r.status === 404 || r.status === 400, `${bad}: ${r.status}`);
      assert.doesNotMatch(await r.text(), /^secret$/);
    }
  });

  it('streams the build log as it grows, resumes from Last-Event-ID, and ends with the attempt', async () => {
    const res = await fetch(`${base}/api/v1/jobs/j1/tasks/el9/x86_64/log`);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    let text = '';
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    };
    await until(/data: line one/);
    appendFileSync(join(attemptDir, 'build.log'), 'line two\n');
    await until(/data: line two/);
    const lastId = [...text.matchAll(/^id: (\d+)$/gm)].pop()![1]!;
    assert.equal(Number(lastId), 'line one\nline two\n'.length);
    await finishAttempt(farm.registry, claim, 'success', null, null);
    writeFileSync(join(attemptDir, 'buildinfo.yml'), 'completed: 1\n');
    await until(/event: end/);

    const resumed = await fetch(`${base}/api/v1/jobs/j1/tasks/el9/x86_64/log`, {
      headers: { 'last-event-id': String('line one\n'.length) },
    });
    const rest = await resumed.text();
    assert.doesNotMatch(rest, /line one/);
    assert.match(rest, /data: line two[\s\S]*event: end/);
  });

  it('exposes Prometheus metrics', async () => {
    const r = await fetch(`${base}/metrics`);
    const body = await r.text();
    assert.match(r.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    assert.match(body, /^pkgforge_jobs\{status="success"\} 1$/m);
    assert.match(body, /^pkgforge_tasks\{platform="el9",arch="x86_64",status="success"\} 1$/m);
    assert.match(body, /^pkgforge_build_attempts_total\{outcome="success"\} 1$/m);
    assert.match(body, /^pkgforge_builder_healthy\{builder="b1",platform="el9",arch="x86_64"\} 1$/m);
  });
});
