import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { displayDuration, taskDurations } from '../../src/core/durations.ts';

describe("a task's durations", () => {
  const now = 100_000;
  it('counts a waiting task as queued until now, with no build', () => {
    assert.deepEqual(taskDurations({ status: 'needs build', queuedAt: 40_000, startedAt: null, endedAt: null }, now), {
      queuedMs: 60_000,
      buildMs: null,
      totalMs: null,
    });
  });
  it("does not count an earlier round's attempt as the build of a requeued task", () => {
    const t = { status: 'needs build' as const, queuedAt: 50_000, startedAt: 10_000, endedAt: 20_000 };
    assert.deepEqual(taskDurations(t, now), { queuedMs: 50_000, buildMs: null, totalMs: null });
  });
  it('counts a build in progress until now, and an ended one from queue to end', () => {
    assert.deepEqual(taskDurations({ status: 'building', queuedAt: 10_000, startedAt: 15_000, endedAt: null }, now), {
      queuedMs: 5000,
      buildMs: 85_000,
      totalMs: null,
    });
    assert.deepEqual(taskDurations({ status: 'success', queuedAt: 10_000, startedAt: 15_000, endedAt: 45_000 }, now), {
      queuedMs: 5000,
      buildMs: 30_000,
      totalMs: 35_000,
    });
  });
  it('gives a task cancelled before it started no times, and one cancelled while building no build time yet', () => {
    assert.deepEqual(taskDurations({ status: 'cancelled', queuedAt: 10_000, startedAt: null, endedAt: null }, now), {
      queuedMs: null,
      buildMs: null,
      totalMs: null,
    });
    assert.deepEqual(taskDurations({ status: 'cancelled', queuedAt: 10_000, startedAt: 12_000, endedAt: null }, now), {
      queuedMs: 2000,
      buildMs: null,
      totalMs: null,
    });
  });
  it('prints durations for people', () => {
    assert.deepEqual([null, 850, 12_400, 185_000, 180_000, 7_440_000, 7_200_000, 266_400_000].map(displayDuration), [
      '-',
      '850 ms',
      '12 s',
      '3 min 5 s',
      '3 min',
      '2 h 4 min',
      '2 h',
      '3 d 2 h',
    ]);
  });
});
