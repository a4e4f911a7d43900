import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { runCommand } from '../../src/util/child.ts';

const running = (marker: string) => {
  try {
    return execFileSync('pgrep', ['-f', marker]).toString().trim().length > 0;
  } catch {
    return false;
  }
};

describe('child processes', () => {
  it('kill what a command left running in its process group when it exits', async () => {
    const marker = `sleep 31.${process.pid}`;
    const started = Date.now();
    const r = await runCommand('sh', ['-c', `${marker} & echo started`]);
    assert.equal(r.code, 0);
    assert.ok(Date.now() - started < 3000, 'a leftover holding the output pipe must not keep us waiting');
    assert.equal(running(marker), false);
  });

  it('kill the whole group on timeout, even a child that ignores SIGTERM', async () => {
    const marker = `sleep 32.${process.pid}`;
    const started = Date.now();
    const r = await runCommand('sh', ['-c', `trap '' TERM; ${marker}; true`], { timeoutMs: 300, killGraceMs: 500 });
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - started < 3000);
    assert.equal(running(marker), false);
  });
});
