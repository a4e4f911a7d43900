import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { attemptPath, taskResultsPath } from '../../src/core/results-layout.ts';

describe('results layout', () => {
  it('places a task under its job and an attempt under its task', () => {
    assert.equal(taskResultsPath('abc', 'el9', 'x86_64'), 'abc/el9-x86_64');
    assert.equal(attemptPath('abc', 'el9', 'x86_64', 3), 'abc/el9-x86_64/attempt-3');
  });

  it('refuses any part that would leave its directory', () => {
    for (const [job, platform, arch] of [
      ['..', 'el9', 'x86_64'],
      ['a/b', 'el9', 'x86_64'],
      ['abc', '../x', 'y'],
      ['abc', 'el9', 'x/..'],
      ['', 'el9', 'x86_64'],
      ['.', 'el9', 'x86_64'],
    ] as const) {
      assert.throws(() => taskResultsPath(job, platform, arch), /cannot be part of a results path/);
    }
    assert.throws(() => attemptPath('abc', 'el9', 'x86_64', 0), /attempt 0 has no results directory/);
  });
});
