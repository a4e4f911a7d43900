import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import {
  addPlatforms,
  eventually,
  farmEnv,
  makeFarm,
  pkgforge,
  spawnPkgforge,
  type TestFarm,
  submitTo,
} from '../helpers/farm.ts';
import { buildRpm, specFor, ticking } from '../helpers/srpm.ts';
import { DIALECTS } from '../helpers/registries.ts';

for (const dialect of DIALECTS) {
  describe(`pkgforge buildd as a daemon on ${dialect}`, () => {
    let farm: TestFarm;
    let env: Record<string, string>;
    let hook: { port: number; bodies: { body: string; signature: string | undefined }[]; close: () => void };
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*');
      await addBuilder(farm.registry.db, 'd1', 'el9', 'x86_64');
      const bodies: { body: string; signature: string | undefined }[] = [];
      const server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          bodies.push({ body, signature: req.headers['x-pkgforge-signature'] as string | undefined });
          res.end('ok');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      hook = { port: (server.address() as AddressInfo).port, bodies, close: () => server.close() };
      env = farmEnv(farm);
      const { writeFileSync, mkdirSync } = await import('node:fs');
      mkdirSync(join(farm.root, 'etc'), { recursive: true });
      writeFileSync(
        join(farm.root, 'etc', 'buildd.yml'),
        `reports:\n  - webhook:\n      url: http://127.0.0.1:${hook.port}/hook\n      secret: s3cret\n`,
      );
    });
    after(async () => {
      hook.close();
      await farm.dispose();
    });

    async function submit(id: string, files: string[]) {
      await submitTo(farm, id, files);
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
    }
    const daemon = () => spawnPkgforge(['buildd', '--name', 'd1', '--daemon'], env);

    it('wakes for a new task, follows the log live, finishes the build in hand on SIGTERM, and reports by webhook', async () => {
      const d = daemon();
      await d.until(/Starting build daemon 'd1'/);
      await submit('term', [ticking('ticker', 3)]);
      // `pkgforge logs --follow` prints the log as it grows and stops when the attempt ends.
      await d.until(/Starting task term/);
      const follow = spawnPkgforge(['logs', 'term', '--follow'], env);
      // The first line of the build, shown while the build still runs: the follower is live, and the stop comes mid-build.
      await follow.until(/tick-1/);
      assert.doesNotMatch(follow.output(), /finished:/);
      d.child.kill('SIGTERM');
      assert.equal(await d.exited, 0, d.output());
      assert.equal(await follow.exited, 0, follow.output());
      assert.match(follow.output(), /tick-1[\s\S]*tick-3[\s\S]*finished: success/);
      const job = (await getJobDetail(farm.registry.db, 'term'))!;
      assert.equal(job.status, 'success');
      const hit = hook.bodies.find((b) => b.body.includes('"job":"term"'))!;
      assert.equal(hit.signature, `sha256=${createHmac('sha256', 's3cret').update(hit.body).digest('hex')}`);
      assert.equal(JSON.parse(hit.body).status, 'success');
      const show = await pkgforge(['job', 'show', 'term'], env);
      assert.match(show.stdout, new RegExp(`attempt 1 by d1 on ${hostname()}, .* to .*: success`));
    });

    it("wakes at once for a task another process registers, though its poll is an hour (the registry's notifications)", async () => {
      const d = spawnPkgforge(['buildd', '--name', 'd1', '--daemon'], { ...env, PKGFORGE_POLL: '3600' });
      // After its first, empty look: only a notification (LISTEN/NOTIFY, or SQLite's wake file) can wake it.
      await d.until(/Idle: waiting for tasks of el9\/x86_64/);
      await submit('woken', [buildRpm(specFor('woken'))]);
      await d.until(/Finished task woken/);
      d.child.kill('SIGTERM');
      assert.equal(await d.exited, 0, d.output());
      assert.equal((await getJobDetail(farm.registry.db, 'woken'))!.status, 'success');
    });

    it('shows its builder idle with heartbeats while it waits, stopped after SIGTERM, offline after SIGKILL once the heartbeat is older than the expiry', async () => {
      // An hour's poll: only the idle heartbeat (every lease_renewal) can move the heartbeat on.
      const quick = { ...env, PKGFORGE_POLL: '3600', PKGFORGE_LEASE_RENEWAL: '0.5', PKGFORGE_LEASE_EXPIRY: '2' };
      const shown = async () => {
        const r = await pkgforge(['builder', 'list', '--json'], quick);
        assert.equal(r.code, 0, r.stderr);
        return (
          JSON.parse(r.stdout) as {
            name: string;
            state: string;
            host: string;
            lastHeartbeat: string;
            stoppedAt: string | null;
          }[]
        ).find((b) => b.name === 'd1')!;
      };
      const d = spawnPkgforge(['buildd', '--name', 'd1', '--daemon'], quick);
      try {
        await d.until(/Idle: waiting for tasks/);
        const first = await shown();
        assert.deepEqual([first.state, first.host], ['idle', hostname()]);
        await eventually('an idle heartbeat', async () => (await shown()).lastHeartbeat > first.lastHeartbeat);
        d.child.kill('SIGTERM');
        assert.equal(await d.exited, 0, d.output());
        const stopped = await shown();
        assert.equal(stopped.state, 'stopped');
        assert.ok(stopped.stoppedAt! >= first.lastHeartbeat);
        const list = await pkgforge(['builder', 'list'], quick);
        assert.match(list.stdout, /^d1\s+el9\/x86_64\s+stopped\s.*stopped at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/m);
      } finally {
        d.child.kill('SIGKILL');
      }
      const k = spawnPkgforge(['buildd', '--name', 'd1', '--daemon'], quick);
      try {
        await k.until(/Idle: waiting for tasks/);
        // Started again: no longer stopped.
        assert.equal((await shown()).state, 'idle');
        k.child.kill('SIGKILL');
        await k.exited;
        await eventually(
          'the killed builder to show offline',
          async () => (await shown()).state === 'offline',
          30_000,
          200,
        );
      } finally {
        k.child.kill('SIGKILL');
      }
    });

    it('aborts the build on a second SIGTERM and puts the task back in the queue', async () => {
      const d = daemon();
      await d.until(/Starting build daemon 'd1'/);
      await submit('abort', [ticking('longticker', 60)]);
      await d.until(/Starting task abort/);
      d.child.kill('SIGTERM');
      // The second signal only counts as "again" once the first has been handled.
      await d.until(/Handling shutdown request \(SIGTERM\)/);
      d.child.kill('SIGTERM');
      await d.until(/SIGTERM again: aborting the build in hand/);
      assert.equal(await d.exited, 0, d.output());
      const job = (await getJobDetail(farm.registry.db, 'abort'))!;
      assert.equal(job.tasks[0]!.status, 'needs build');
      const { listAttempts } = await import('../../src/registry/attempts.ts');
      const attempts = await listAttempts(farm.registry.db, job.tasks[0]!.id);
      assert.equal(attempts[0]!.outcome, 'requeued');
      assert.match(attempts[0]!.reason!, /told to stop now/);
      // Leave nothing waiting for the next test run.
      await pkgforge(['cancel', 'abort'], env);
    });

    it('prints a helpful error when the builder does not exist', async () => {
      const r = await pkgforge(['buildd', '--name', 'nobody'], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /There is no builder named 'nobody'.*pkgforge builder add/);
    });

    it('says there is nothing to build for a one-shot run with an empty queue', async () => {
      const r = await pkgforge(['buildd', '--name', 'd1'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Nothing to build for 'd1'/);
    });
  });
}
