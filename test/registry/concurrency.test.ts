import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deriveJobStatus } from '../../src/core/job-status.ts';
import { normaliseManifest } from '../../src/core/manifest.ts';
import {
  builderIdentity,
  claimNextTask,
  finishAttempt,
  listAttempts,
  releaseClaim,
  requeueAbandoned,
} from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail, insertJob } from '../../src/registry/jobs.ts';
import { cancelTasks, registerTasks } from '../../src/registry/tasks.ts';
import { addPlatforms } from '../helpers/farm.ts';
import { makeRegistry, type TestRegistry } from '../helpers/registries.ts';

// PostgreSQL runs these transactions side by side (SQLite serialises writers): cancels, finishes,
// hand-backs and requeues of one job's tasks, all at once, must neither deadlock nor leave a state
// that no order of them could have produced.
describe('concurrent cancel, finish, hand-back and requeue on PostgreSQL', () => {
  let t: TestRegistry;
  before(async () => {
    t = await makeRegistry('postgresql');
    await addPlatforms(t, 'el9/x86_64*', 'f40/x86_64*');
    await addBuilder(t.registry.db, 'e1', 'el9', 'x86_64');
    await addBuilder(t.registry.db, 'g1', 'f40', 'x86_64');
  });
  after(() => t.dispose());

  it('ends every round in a consistent state, with the job status its tasks give', async () => {
    const [e1, g1] = [(await builderIdentity(t.registry.db, 'e1'))!, (await builderIdentity(t.registry.db, 'g1'))!];
    for (let round = 0; round < 25; round++) {
      const id = `race-${round}`;
      const m = normaliseManifest(
        { id, bucket: 'devel', packages: [{ file: `${id}.src.rpm`, type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }] },
        id,
      );
      await insertJob(t.registry, m, { submitter: 'u', submittedAt: round, incomingEntry: id });
      await registerTasks(t.registry, id, ['all'], ['all'], 'rpm');
      // Two builders hold the job's two tasks; one lease has already run out.
      const held = (await claimNextTask(t.registry, e1, 'h[1]', 60_000))!;
      const expired = (await claimNextTask(t.registry, g1, 'h[2]', 1))!;
      await new Promise((r) => setTimeout(r, 5));
      const [finished, , released] = await Promise.all([
        finishAttempt(t.registry, held, 'success', null, null),
        cancelTasks(t.registry, id),
        releaseClaim(t.registry, expired, 'stopping'),
        requeueAbandoned(t.registry),
      ]);
      const job = (await getJobDetail(t.registry.db, id))!;
      const byPlatform = Object.fromEntries(job.tasks.map((task) => [task.platform, task]));
      const el9 = byPlatform.el9!;
      const f40 = byPlatform.f40!;
      // The held task: the finish and the cancel raced; exactly one of them took it.
      assert.equal(el9.status, finished ? 'success' : 'cancelled', `round ${round}`);
      const [heldAttempt] = await listAttempts(t.registry.db, el9.id);
      assert.equal(heldAttempt!.outcome, finished ? 'success' : 'cancelled');
      // The expired one: released or requeued before the cancel, or not at all; the cancel takes
      // waiting and building tasks alike, and nothing revives a cancelled one.
      assert.equal(f40.status, 'cancelled', `round ${round}`);
      const [expiredAttempt] = await listAttempts(t.registry.db, f40.id);
      assert.ok(expiredAttempt!.endedAt !== null, 'the expired attempt is closed');
      assert.ok(
        ['requeued', 'lease expired', 'cancelled'].includes(expiredAttempt!.outcome!),
        expiredAttempt!.outcome!,
      );
      if (released) assert.equal(expiredAttempt!.outcome, 'requeued');
      assert.equal(job.status, deriveJobStatus(job.tasks.map((task) => task.status)) ?? 'registered', `round ${round}`);
      // The counters the finish keeps in its one statement agree with a recount of the tasks.
      const counters = await t.registry.db
        .selectFrom('jobs')
        .select(['tasks_total', 'tasks_success', 'tasks_fail', 'tasks_cancelled'])
        .where('uuid', '=', job.id)
        .executeTakeFirstOrThrow();
      const statuses = job.tasks.map((task) => task.status);
      assert.deepEqual(
        [counters.tasks_total, counters.tasks_success, counters.tasks_fail, counters.tasks_cancelled],
        [
          statuses.length,
          ...(['success', 'fail', 'cancelled'] as const).map((s) => statuses.filter((x) => x === s).length),
        ],
        `round ${round}`,
      );
    }
  });
});
