import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  builderState,
  builderView,
  isBuilderAlive,
  isBuilderHealthy,
  parseInstance,
  whyWaiting,
} from '../../src/core/builder-health.ts';

const NOW = Date.UTC(2026, 11, 3, 14, 30);
const WITHIN = 120_000;
const builder = (
  ageMs: number | null,
  {
    unable = null,
    busy = false,
    stoppedAgo = null,
  }: { unable?: string | null; busy?: boolean; stoppedAgo?: number | null } = {},
) => ({
  lastHeartbeatAt: ageMs === null ? null : NOW - ageMs,
  stoppedAt: stoppedAgo === null ? null : NOW - stoppedAgo,
  unableReason: unable,
  currentTaskId: busy ? 7 : null,
});

describe('builder health', () => {
  it('is alive with a heartbeat within the expiry and no clean stop since', () => {
    assert.equal(isBuilderAlive(builder(WITHIN), NOW, WITHIN), true);
    assert.equal(isBuilderAlive(builder(WITHIN + 1), NOW, WITHIN), false);
    assert.equal(isBuilderAlive(builder(null), NOW, WITHIN), false);
    assert.equal(isBuilderAlive(builder(10, { stoppedAgo: 5 }), NOW, WITHIN), false);
    assert.equal(isBuilderHealthy(builder(10, { unable: 'missing tools: rpmbuild' }), NOW, WITHIN), false);
    assert.equal(isBuilderHealthy(builder(10), NOW, WITHIN), true);
  });

  it('names each state', () => {
    const state = (b: ReturnType<typeof builder>) => builderState(b, NOW, WITHIN);
    assert.equal(state(builder(10, { busy: true })), 'building');
    assert.equal(state(builder(10)), 'idle');
    // A stop is said at once, however recent the last heartbeat.
    assert.equal(state(builder(10, { stoppedAgo: 5 })), 'stopped');
    // A daemon that died: running until its heartbeat is older than the expiry, then offline.
    assert.equal(state(builder(WITHIN - 1, { busy: true })), 'building');
    assert.equal(state(builder(WITHIN + 1, { busy: true })), 'offline');
    assert.equal(state(builder(null)), 'offline');
    assert.equal(state(builder(WITHIN * 5, { unable: 'missing tools: rpmbuild' })), 'unable');
  });

  it('says why waiting tasks wait, naming the platform and when its builders were last seen', () => {
    const why = (builders: ReturnType<typeof builder>[], active = true) =>
      whyWaiting('deb12/x86_64', active, builders, NOW, WITHIN);
    assert.equal(why([builder(10)], false), 'the platform deb12/x86_64 is not active');
    assert.equal(why([]), 'no builder of deb12/x86_64 is registered');
    assert.equal(
      why([builder(10, { unable: 'missing tools: rpmbuild' })]),
      'the builders of deb12/x86_64 cannot build: missing tools: rpmbuild',
    );
    assert.equal(
      why([builder(60_000, { stoppedAgo: 28 * 60_000 }), builder(10 * 60_000, { stoppedAgo: 3600_000 })]),
      'no builder of deb12/x86_64 is running; the last one stopped at 2026-12-03 14:02:00 UTC',
    );
    assert.equal(
      why([builder(WITHIN * 2), builder(WITHIN * 3, { stoppedAgo: WITHIN * 3 })]),
      'no builder of deb12/x86_64 is running; the last one was heard from at 2026-12-03 14:26:00 UTC and did not stop cleanly',
    );
    assert.match(why([builder(null)]), /^no builder of deb12\/x86_64 is running; none has run yet/);
    assert.equal(why([builder(10, { busy: true }), builder(20, { busy: true })]), 'all 2 running builders are busy');
    assert.equal(why([builder(10, { busy: true })]), 'all 1 running builder is busy');
    assert.equal(why([builder(10, { busy: true }), builder(20)]), 'waiting for an idle builder to claim it');
    // A stopped builder beside a running one is not "busy".
    assert.equal(why([builder(10), builder(20, { stoppedAgo: 5 })]), 'waiting for an idle builder to claim it');
  });

  it('shows the host by name and the job in hand only while building', () => {
    assert.deepEqual(parseInstance('vm[5062]'), { host: 'vm', pid: 5062 });
    assert.deepEqual(parseInstance('odd[name'), { host: 'odd[name', pid: null });
    const facts = {
      ...builder(10, { busy: true }),
      name: 'b1',
      platform: 'el9',
      arch: 'x86_64',
      host: 'vm[5062]',
      sandbox: 'none',
      currentJob: { id: 'J1', attempt: 2 },
    };
    const view = builderView(facts, NOW, WITHIN);
    assert.deepEqual(
      [view.state, view.host, view.pid, view.unsandboxed, view.currentJob],
      ['building', 'vm', 5062, true, { id: 'J1', attempt: 2 }],
    );
    // Killed mid-build: the registry still names the task, the view does not call it being built.
    assert.equal(builderView({ ...facts, lastHeartbeatAt: NOW - WITHIN * 2 }, NOW, WITHIN).currentJob, null);
  });
});
