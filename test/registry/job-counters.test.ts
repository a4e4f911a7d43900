import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jobStatusOf, type TaskCounts } from '../../src/core/job-status.ts';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { JobStatus } from '../../src/core/terms.ts';
import { jobCountersSet, oneMoreEnded } from '../../src/registry/job-counters.ts';
import { insertJob, setJobStatus } from '../../src/registry/jobs.ts';
import { DIALECTS, makeRegistry, type TestRegistry } from '../helpers/registries.ts';

/** Every way up to three tasks can have ended: total, then how many succeeded, failed, were cancelled. */
function allCounts(): TaskCounts[] {
  const out: TaskCounts[] = [];
  for (let total = 0; total <= 3; total++)
    for (let success = 0; success <= total; success++)
      for (let fail = 0; fail + success <= total; fail++)
        for (let cancelled = 0; cancelled + fail + success <= total; cancelled++)
          out.push({ total, success, fail, cancelled });
  return out;
}

for (const dialect of DIALECTS) {
  describe(`the job counters' SQL on ${dialect}`, () => {
    let t: TestRegistry;
    let jobId: number;
    before(async () => {
      t = await makeRegistry(dialect);
      const m = normaliseManifest(
        {
          id: 'counted',
          bucket: 'devel',
          packages: [{ file: 'a.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }],
        },
        'counted',
      );
      await insertJob(t.registry, m, { submitter: null, submittedAt: 1, incomingEntry: null });
      jobId = (
        await t.registry.db.selectFrom('jobs').select('id').where('uuid', '=', 'counted').executeTakeFirstOrThrow()
      ).id;
    });
    after(() => t.dispose());

    const statusAfter = async (from: JobStatus, set: ReturnType<typeof jobCountersSet>) => {
      await setJobStatus(t.registry.db, 'counted', from, null);
      await t.registry.db.updateTable('jobs').set(set).where('id', '=', jobId).execute();
      return await t.registry.db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
    };

    it('gives the status core gives for every count, and leaves the incoming states alone', async () => {
      for (const counts of allCounts()) {
        const row = await statusAfter(JobStatus.registered, jobCountersSet(counts, 5));
        // Nothing ended, or no tasks: a registered job stays registered.
        const expected = jobStatusOf(counts) ?? JobStatus.registered;
        assert.equal(row.status, expected, JSON.stringify(counts));
        assert.deepEqual(
          [row.tasks_total, row.tasks_success, row.tasks_fail, row.tasks_cancelled],
          [counts.total, counts.success, counts.fail, counts.cancelled],
        );
        assert.equal((await statusAfter(JobStatus.accepted, jobCountersSet(counts, 5))).status, JobStatus.accepted);
      }
    });

    it('counts one more ended task in from the row it updates', async () => {
      await statusAfter(JobStatus.registered, jobCountersSet({ total: 2, success: 0, fail: 0, cancelled: 0 }, 5));
      assert.equal((await statusAfter(JobStatus.registered, oneMoreEnded('success', 6))).status, 'partial success');
      const both = await statusAfter(JobStatus.partialSuccess, oneMoreEnded('success', 7));
      assert.equal(both.status, 'success');
      assert.equal(both.tasks_success, 2);
      assert.equal(both.modified_at, 7);
    });
  });
}
