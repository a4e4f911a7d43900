import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deriveJobStatus } from '../../src/core/job-status.ts';
import type { TaskStatus } from '../../src/core/terms.ts';

describe('the job status follows its tasks', () => {
  const cases: [TaskStatus[], string | null][] = [
    [[], null],
    [['needs build', 'building'], null],
    [['fail', 'fail'], 'fail'],
    [['fail', 'success'], 'partial fail'],
    [['fail', 'needs build'], 'partial fail'],
    [['success', 'success'], 'success'],
    [['success', 'building'], 'partial success'],
    [['success', 'cancelled'], 'partial success'],
    [['cancelled', 'cancelled'], 'cancelled'],
    [['cancelled', 'needs build'], null],
  ];
  for (const [tasks, expected] of cases) {
    it(`[${tasks.join(', ')}] gives ${expected}`, () => assert.equal(deriveJobStatus(tasks), expected));
  }
});
