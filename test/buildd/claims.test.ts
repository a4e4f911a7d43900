import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { normaliseManifest } from '../../src/core/manifest.ts';
import {
  builderIdentity,
  claimNextTask,
  finishAttempt,
  heartbeat,
  listAttempts,
  releaseClaim,
  requeueAbandoned,
} from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail, insertJob } from '../../src/registry/jobs.ts';
import { cancelTasks, registerTasks, retryTasks } from '../../src/registry/tasks.ts';
import { addPlatforms, helperArgs, registryEnv } from '../helpers/farm.ts';
import { DIALECTS, makeRegistry, type TestRegistry } from '../helpers/registries.ts';

const run = promisify(execFile);

async function job(t: TestRegistry, id: string, submittedAt: number) {
  const m = normaliseManifest(
    { id, bucket: 'devel', packages: [{ file: `${id}.src.rpm`, type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }] },
    id,
  );
  await insertJob(t.registry, m, { submitter: 'u', submittedAt, incomingEntry: id });
  await registerTasks(t.registry, id, ['all'], ['all'], 'rpm');
}

for (const dialect of DIALECTS) {
  describe(`claims, leases and attempts on ${dialect}`, () => {
    // Each test gets its own registry: claims take the oldest waiting task, so tasks left by another test would change what is claimed.
    let t: TestRegistry;
    beforeEach(async () => {
      t = await makeRegistry(dialect);
      await addPlatforms(t, 'el9/x86_64*', 'f40/x86_64*');
      await addBuilder(t.registry.db, 'b1', 'el9', 'x86_64');
      await addBuilder(t.registry.db, 'b2', 'el9', 'x86_64');
      await addBuilder(t.registry.db, 'f1', 'f40', 'x86_64');
    });
    afterEach(() => t.dispose());
    const me = async (name: string) => (await builderIdentity(t.registry.db, name))!;

    it("claims the oldest task of the builder's platform first, by submission time", async () => {
      await job(t, 'newer', 2000);
      await job(t, 'older', 1000);
      const c1 = (await claimNextTask(t.registry, await me('b1'), 'h', 60_000))!;
      assert.equal(c1.jobId, 'older');
      assert.equal(c1.attempt, 1);
      assert.equal(c1.platform, 'el9');
      const c2 = (await claimNextTask(t.registry, await me('b2'), 'h', 60_000))!;
      assert.equal(c2.jobId, 'newer');
      assert.equal(await claimNextTask(t.registry, await me('b1'), 'h', 60_000), null);
      assert.ok(await finishAttempt(t.registry, c1, 'success', null, 'older/el9-x86_64/attempt-1'));
      assert.ok(await finishAttempt(t.registry, c2, 'fail', 'it broke', null));
      const older = (await getJobDetail(t.registry.db, 'older'))!;
      assert.equal(older.tasks.find((x) => x.platform === 'el9')?.status, 'success');
      assert.equal(older.status, 'partial success');
      const newer = (await getJobDetail(t.registry.db, 'newer'))!;
      assert.equal(newer.status, 'partial fail');
      assert.equal(newer.tasks.find((x) => x.platform === 'el9')?.reason, 'it broke');
    });

    it("records a reason holding a NUL byte (a build's output, a remote report) with U+FFFD in its place", async () => {
      await job(t, 'nul', 1000);
      const c = (await claimNextTask(t.registry, await me('b1'), 'h', 60_000))!;
      assert.ok(await finishAttempt(t.registry, c, 'fail', 'broke at\0here', null));
      const task = (await getJobDetail(t.registry.db, 'nul'))!.tasks.find((x) => x.platform === 'el9')!;
      assert.equal(task.reason, 'broke at\uFFFDhere');
      const [attempt] = await listAttempts(t.registry.db, task.id);
      assert.equal(attempt!.reason, 'broke at\uFFFDhere');
    });

    it('requeues a task whose lease expired, in its old place, and refuses the late result', async () => {
      await job(t, 'leased', 500);
      const first = (await claimNextTask(t.registry, await me('f1'), 'h1', 1))!;
      assert.equal(first.jobId, 'leased');
      // The sleep is the behaviour under test: the 1 ms lease must really run out on the database's clock (the
      // expiry is `lease_expires_at < now` there, in whole milliseconds); 10 ms is that minimum with room to spare.
      await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(await requeueAbandoned(t.registry), [first.taskId]);
      assert.equal(await heartbeat(t.registry, first, 60_000), 'lost');
      // The oldest task is still first in the queue.
      const second = (await claimNextTask(t.registry, await me('f1'), 'h2', 60_000))!;
      assert.equal(second.jobId, 'leased');
      assert.equal(second.attempt, 2);
      assert.equal(await finishAttempt(t.registry, first, 'fail', 'late', null), false);
      assert.ok(await finishAttempt(t.registry, second, 'success', null, null));
      const attempts = await listAttempts(t.registry.db, first.taskId);
      assert.deepEqual(
        attempts.map((a) => [a.number, a.host, a.outcome]),
        [
          [1, 'h1', 'lease expired'],
          [2, 'h2', 'success'],
        ],
      );
    });

    it("resets a restarted builder's own unfinished attempt", async () => {
      await job(t, 'own', 100);
      const c = (await claimNextTask(t.registry, await me('b1'), 'h', 60_000))!;
      assert.deepEqual(await requeueAbandoned(t.registry, { builderId: c.builderId }), [c.taskId]);
      assert.equal((await listAttempts(t.registry.db, c.taskId))[0]!.outcome, 'abandoned');
      const again = (await claimNextTask(t.registry, await me('b1'), 'h', 60_000))!;
      assert.equal(again.taskId, c.taskId);
      assert.ok(await releaseClaim(t.registry, again, 'stopping'));
    });

    it('cancels waiting and running tasks; a running build hears it at its heartbeat; retry requeues', async () => {
      await job(t, 'steer', 150);
      const c = (await claimNextTask(t.registry, await me('b1'), 'h', 60_000))!;
      assert.equal(c.jobId, 'steer');
      const cancelled = await cancelTasks(t.registry, 'steer', {}, 'alice');
      assert.deepEqual(cancelled.map((x) => [x.platform, x.wasRunning]).sort(), [
        ['el9', true],
        ['f40', false],
      ]);
      assert.equal(await heartbeat(t.registry, c, 60_000), 'cancelled');
      assert.equal(await finishAttempt(t.registry, c, 'success', null, null), false);
      let detail = (await getJobDetail(t.registry.db, 'steer'))!;
      assert.equal(detail.status, 'cancelled');
      assert.ok(detail.tasks.every((x) => x.reason === 'cancelled by alice'));
      assert.equal((await retryTasks(t.registry, 'steer')).length, 2);
      detail = (await getJobDetail(t.registry.db, 'steer'))!;
      assert.equal(detail.status, 'registered');
      assert.ok(detail.tasks.every((x) => x.status === 'needs build'));
      await assert.rejects(cancelTasks(t.registry, 'nope'), /There is no job nope/);
    });

    it('refuses a platform name with a dash, which would make results paths ambiguous', async () => {
      const { addPlatform } = await import('../../src/registry/platforms.ts');
      await assert.rejects(addPlatform(t.registry.db, 'el-9', 'x86_64'), /the name may only contain/);
    });

    it('never gives one task to two builders racing in separate processes', async () => {
      for (let i = 0; i < 60; i++) await job(t, `race-${i}`, 10_000 + i);
      const url = registryEnv(t.config).replace(/^sqlite:/, '');
      const outs = await Promise.all(
        ['b1', 'b2', 'b1', 'b2'].map((b) => run(process.execPath, [...helperArgs('claim-child'), url, b])),
      );
      const claimed = outs.flatMap((o) => JSON.parse(o.stdout) as number[]);
      // Every waiting el9 task was claimed exactly once.
      assert.equal(claimed.length, 60);
      assert.equal(new Set(claimed).size, 60);
      const left = await t.registry.db
        .selectFrom('tasks')
        .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
        .select('tasks.id')
        .where('platforms.name', '=', 'el9')
        .where('tasks.status', '=', 'needs build')
        .execute();
      assert.deepEqual(left, []);
    });
  });
}
