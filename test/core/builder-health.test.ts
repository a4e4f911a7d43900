import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { countBuilders, isBuilderAlive, isBuilderHealthy, whyWaiting } from '../../src/core/builder-health.ts';

const NOW = 1_000_000;
const WITHIN = 120_000;
const builder = (ageMs: number | null, unableReason: string | null = null, busy = false) => ({
  lastHeartbeatAt: ageMs === null ? null : NOW - ageMs,
  unableReason,
  busy,
});

describe('builder health', () => {
  it('is alive with a heartbeat within the expiry, healthy when also able to build', () => {
    assert.equal(isBuilderAlive(builder(WITHIN), NOW, WITHIN), true);
    assert.equal(isBuilderAlive(builder(WITHIN + 1), NOW, WITHIN), false);
    assert.equal(isBuilderAlive(builder(null), NOW, WITHIN), false);
    assert.equal(isBuilderHealthy(builder(10, 'missing tools: rpmbuild'), NOW, WITHIN), false);
    assert.equal(isBuilderHealthy(builder(10), NOW, WITHIN), true);
  });

  it('says why waiting tasks wait', () => {
    const why = (builders: ReturnType<typeof builder>[], active = true) =>
      whyWaiting(
        active,
        countBuilders(builders, NOW, WITHIN),
        builders.find((b) => b.unableReason !== null)?.unableReason ?? null,
      );
    assert.equal(why([builder(10)], false), 'the platform is not active');
    assert.equal(why([]), 'no builder is registered for this platform');
    assert.equal(why([builder(10, 'missing tools: rpmbuild')]), 'the builders cannot build: missing tools: rpmbuild');
    assert.equal(why([builder(WITHIN * 2)]), 'no builder for this platform is running (no recent heartbeat)');
    assert.equal(why([builder(10, null, true), builder(20, null, true)]), 'all 2 running builders are busy');
    assert.equal(why([builder(10, null, true)]), 'all 1 running builder is busy');
    assert.equal(why([builder(10, null, true), builder(20)]), 'waiting for an idle builder to claim it');
  });
});
