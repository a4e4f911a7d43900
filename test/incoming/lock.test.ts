import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { takeProcessorLock } from '../../src/incoming/lock.ts';

/** A lock left by another holder: its pid, and how old its note is. */
function leftLock(pid: number, ageMs = 0): string {
  const accepted = mkdtempSync(join(tmpdir(), 'pkgforge-lock-'));
  const lock = join(accepted, '.incoming.lock');
  mkdirSync(lock);
  writeFileSync(join(lock, 'owner'), JSON.stringify({ host: hostname(), pid, token: 'old' }));
  const t = new Date(Date.now() - ageMs);
  utimesSync(join(lock, 'owner'), t, t);
  return accepted;
}

describe('the incoming processor lock', () => {
  it('is held by one processor at a time', async () => {
    const accepted = mkdtempSync(join(tmpdir(), 'pkgforge-lock-'));
    const a = await takeProcessorLock(accepted);
    assert.ok(a);
    assert.equal(await takeProcessorLock(accepted), null);
    await a.release();
    const b = await takeProcessorLock(accepted);
    assert.ok(b);
    await b.release();
    assert.deepEqual(readdirSync(accepted), []);
  });

  it('is not taken from a live holder, but at once from a dead one, and after the stale time from any', async () => {
    assert.equal(await takeProcessorLock(leftLock(process.pid)), null);
    const dead = await takeProcessorLock(leftLock(2 ** 22 + 12345));
    assert.ok(dead, "a dead holder's lock is taken over");
    await dead.release();
    const stale = await takeProcessorLock(leftLock(process.pid, 60_000));
    assert.ok(stale, 'a lock whose note was not refreshed for 30 s is taken over');
    await stale.release();
  });

  it("goes to exactly one of several processors taking over a dead holder's lock at once", async () => {
    for (let trial = 0; trial < 40; trial++) {
      const accepted = leftLock(2 ** 22 + 12345);
      const got = await Promise.all(
        [0, 1, 2].map((i) =>
          new Promise((r) => setTimeout(r, (trial % 4) * i)).then(() => takeProcessorLock(accepted)),
        ),
      );
      const holders = got.filter((l) => l !== null);
      assert.equal(holders.length, 1, `trial ${trial}: ${holders.length} holders`);
      await holders[0]!.release();
    }
  });
});
