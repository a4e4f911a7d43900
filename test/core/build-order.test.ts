import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildInOrder } from '../../src/core/build-order.ts';

/** Packages that build once every name they need is built; the order they were tried in is kept. */
function world(needs: Record<string, string[]>) {
  const built = new Set<string>();
  const tried: string[] = [];
  const tryOne = async (p: string) => {
    tried.push(p);
    if (!needs[p]!.every((n) => built.has(n))) return false;
    built.add(p);
    return true;
  };
  return { tryOne, tried, built };
}

describe('build order', () => {
  it("builds in the job's order, retrying at the back what needs a later package", async () => {
    const w = world({ app: ['lib'], lib: [], tool: [] });
    const retries: string[][] = [];
    const r = await buildInOrder(['app', 'lib', 'tool'], w.tryOne, {
      errorPolicy: 'retry',
      onRetry: (again) => retries.push(again),
    });
    assert.deepEqual(r, { failed: [], gaveUpEarly: false });
    assert.deepEqual(w.tried, ['app', 'lib', 'tool', 'app']);
    assert.deepEqual(retries, [['app']]);
  });

  it('stops once a pass builds nothing, and says what is left', async () => {
    const w = world({ a: ['b'], b: ['a'], c: [] });
    const r = await buildInOrder(['a', 'b', 'c'], w.tryOne, { errorPolicy: 'retry' });
    assert.deepEqual(r, { failed: ['a', 'b'], gaveUpEarly: false });
    assert.deepEqual(w.tried, ['a', 'b', 'c', 'a', 'b']);
  });

  it('ends at the first failure with the error policy immediate', async () => {
    const w = world({ app: ['lib'], lib: [] });
    const r = await buildInOrder(['app', 'lib'], w.tryOne, { errorPolicy: 'immediate' });
    assert.deepEqual(r, { failed: ['app'], gaveUpEarly: true });
    assert.deepEqual(w.tried, ['app']);
  });

  it('lets an error from trying one package through', async () => {
    await assert.rejects(
      buildInOrder(['x'], async () => Promise.reject(new Error('stopped')), { errorPolicy: 'retry' }),
      /^Error: stopped$/,
    );
  });
});
