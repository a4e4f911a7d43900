import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { TestFarm } from '../helpers/farm.ts';
import { el9Farm, finishNextTask, registeredJob } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { farmApp } from '../helpers/web.ts';

for (const dialect of DIALECTS)
  describe(`the queue page's charts of the last 24 hours, server-rendered SVG (${dialect})`, () => {
    let farm: TestFarm;
    let app: FastifyInstance;
    before(async () => {
      farm = await el9Farm(dialect);
      for (const id of ['one', 'two', 'three']) await registeredJob(farm, id);
      // Two hours ago for the first task: it has been waiting since, the others are new.
      await farm.registry.db
        .updateTable('tasks')
        .set({ queued_at: Date.now() - 2 * 3600_000 })
        .where(
          'job_id',
          '=',
          (await farm.registry.db.selectFrom('jobs').select('id').where('uuid', '=', 'one').executeTakeFirstOrThrow())
            .id,
        )
        .execute();
      // One task is built: it leaves the queue, and its build is drawn.
      assert.equal(await finishNextTask(farm, 'b1', 'success'), 'one');
      app = await farmApp(farm);
    });
    after(async () => {
      await app?.close();
      await farm?.dispose();
    });

    it('draws the depth at each half hour and a dot per ended build, with no script', async () => {
      const page = (await app.inject({ method: 'GET', url: '/queue' })).body;
      const depths = [...page.matchAll(/class="depth" data-at="[^"]+" data-depth="(\d+)"/g)].map((m) => Number(m[1]));
      assert.equal(depths.length, 49);
      // 24 h ago nothing waited; from two hours ago the first task did (until it was claimed just
      // now), and at the last point the two others wait.
      assert.equal(depths[0], 0);
      assert.equal(depths[43], 0); // 2.5 h ago
      assert.deepEqual(depths.slice(45, 48), [1, 1, 1]); // 1.5 h, 1 h and 30 min ago
      assert.equal(depths[48], 2);
      const builds = [...page.matchAll(/class="build" data-ms="(\d+)" data-outcome="(\w+)"/g)];
      assert.equal(builds.length, 1);
      assert.equal(builds[0]![2], 'success');
      assert.match(
        page,
        /<svg class="chart"[^>]*role="img" aria-label="Tasks waiting for a builder, last 24 hours \(UTC\)"/,
      );
      const charts = page.slice(
        page.indexOf('<div class="charts">'),
        page.indexOf('</div>', page.indexOf('<div class="charts">')),
      );
      assert.doesNotMatch(charts, /<script|on\w+=/);
    });
  });
