import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queueDepthSeries } from '../../src/core/queue-history.ts';

describe("the queue's depth over time", () => {
  it('counts the waits that cover each point, grouped ones by their count, open ones until now', () => {
    const waits = [
      { from: 10, until: 35, count: 1 }, // claimed between the points at 30 and 40
      { from: 25, until: null, count: 3 }, // three still waiting, queued in one slot
      { from: 0, until: 10, count: 1 }, // gone at 10: not counted at 10
    ];
    assert.deepEqual(
      queueDepthSeries(waits, 0, 40, 5).map((p) => [p.at, p.depth]),
      [
        [0, 1],
        [10, 1],
        [20, 1],
        [30, 4],
        [40, 3],
      ],
    );
  });
});
