import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sharedRuns } from '../../src/util/shared-run.ts';

describe('shared runs', () => {
  it('serves callers that arrive during a run with one more run that starts after their call', async () => {
    const started: number[] = [];
    let release!: () => void;
    let calls = 0;
    const run = sharedRuns(async () => {
      started.push(calls);
      await new Promise<void>((resolve) => (release = resolve));
    });
    const settled: string[] = [];
    calls = 1;
    const first = run().then(() => settled.push('first'));
    calls = 4;
    const later = [run(), run(), run()].map((p, i) => p.then(() => settled.push(`later${i}`)));
    // Only the first run is under way; the three later callers wait for the next.
    assert.deepEqual(started, [1]);
    release();
    await first;
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(started, [1, 4], 'one more run, begun after every later call');
    assert.deepEqual(settled, ['first']);
    release();
    await Promise.all(later);
    assert.equal(started.length, 2);
  });

  it('starts afresh after a failed run, and tells its callers', async () => {
    let fail = true;
    const run = sharedRuns(async () => {
      if (fail) throw new Error('no');
    });
    await assert.rejects(run(), /no/);
    fail = false;
    await run();
  });
});
