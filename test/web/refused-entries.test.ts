import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { recordRefusedEntry } from '../../src/registry/refused-entries.ts';
import { farmEnv, makeFarm, pkgforge, type TestFarm } from '../helpers/farm.ts';
import { farmApp } from '../helpers/web.ts';

describe('entries refused before they became jobs: in the API, on the jobs page and in pkgforge jobs', () => {
  let farm: TestFarm;
  let app: FastifyInstance;
  before(async () => {
    farm = await makeFarm('sqlite');
    const at = Date.now();
    await recordRefusedEntry(farm.registry.db, {
      entry: 'no-manifest',
      entryKey: '1:1:1',
      submitter: 'alice',
      reason: 'no-manifest: the manifest has not arrived; refused after the grace period of 300 s',
      refusedAt: at - 2000,
    });
    await recordRefusedEntry(farm.registry.db, {
      entry: '<script>alert(1)</script>',
      entryKey: '1:2:1',
      submitter: 'mallory',
      reason: '<img src=x onerror=alert(2)>: build.yml is not YAML',
      refusedAt: at - 1000,
    });
    // The same directory seen again (a pass stopped before removing it) is recorded once.
    await recordRefusedEntry(farm.registry.db, {
      entry: 'no-manifest',
      entryKey: '1:1:1',
      submitter: 'alice',
      reason: 'again',
      refusedAt: at,
    });
    app = await farmApp(farm);
  });
  after(async () => {
    await app?.close();
    await farm?.dispose();
  });

  it('lists them newest first, by submitter, with their reasons', async () => {
    const all = (await app.inject({ method: 'GET', url: '/api/v1/refused-entries' })).json();
    assert.deepEqual(
      all.entries.map((e: { entry: string; status: string }) => [e.entry, e.status]),
      [
        ['<script>alert(1)</script>', 'invalid'],
        ['no-manifest', 'invalid'],
      ],
    );
    const alice = (await app.inject({ method: 'GET', url: '/api/v1/refused-entries?submitter=alice' })).json();
    assert.equal(alice.entries.length, 1);
    assert.match(alice.entries[0].reason, /manifest has not arrived/);
    assert.match(alice.entries[0].refusedAt, /^\d{4}-\d\d-\d\dT/);
  });

  it('shows them on the first jobs page, escaped, and not when filtering by bucket or another status', async () => {
    const page = (await app.inject({ method: 'GET', url: '/' })).body;
    assert.match(page, /<h2>Refused before they became jobs<\/h2>/);
    assert.match(page, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
    assert.doesNotMatch(page, /<script>alert|<img src=x/);
    assert.match(page, /no-manifest: the manifest has not arrived/);
    assert.doesNotMatch((await app.inject({ method: 'GET', url: '/?bucket=devel' })).body, /Refused before/);
    assert.doesNotMatch((await app.inject({ method: 'GET', url: '/?status=success' })).body, /Refused before/);
    assert.match((await app.inject({ method: 'GET', url: '/?status=invalid' })).body, /Refused before/);
    const alices = (await app.inject({ method: 'GET', url: '/?submitter=alice' })).body;
    assert.match(alices, /no-manifest/);
    assert.doesNotMatch(alices, /alert\(1\)/);
  });

  it('pkgforge jobs lists them as invalid entries among the jobs', async () => {
    const r = await pkgforge(['jobs', '--submitter', 'alice'], farmEnv(farm));
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^\(entry no-manifest\)\s+invalid\s+-\s+alice\s+\S+ \S+ UTC\s+no-manifest: the manifest has not arrived/m,
    );
    const json = JSON.parse((await pkgforge(['jobs', '--json'], farmEnv(farm))).stdout);
    assert.deepEqual(
      json.map((j: { refusedEntry?: string }) => j.refusedEntry),
      ['<script>alert(1)</script>', 'no-manifest'],
    );
    assert.match((await pkgforge(['jobs', '--bucket', 'devel'], farmEnv(farm))).stdout, /^No jobs$/m);
  });
});
