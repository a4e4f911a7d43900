import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runIncomingDaemon, runIncomingPass } from '../../src/incoming/processor.ts';
import { submitJob } from '../../src/incoming/submit-job.ts';
import { builderIdentity, claimNextTask } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { cancelTasks } from '../../src/registry/tasks.ts';
import {
  addPlatforms,
  eventually,
  farmEnv,
  makeFarm,
  spawnPkgforge,
  type TestFarm,
  submitTo,
} from '../helpers/farm.ts';
import { buildRpm, specFor, srpm } from '../helpers/srpm.ts';

/** The pids of running processes whose command line is exactly `sleep <seconds>`. */
function sleepers(seconds: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1') === `sleep\0${seconds}\0`) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}

/** A build that leaves a background process in its group and then sleeps itself: both must go when its daemon dies. */
const lingering = (name: string, marker: string) =>
  buildRpm(
    specFor(name).replace('%install', `%build\n(sleep ${marker} &)\necho started-${name}\nsleep ${marker}\n%install`),
  );

describe('a build daemon killed with SIGKILL leaves nothing behind', () => {
  let farm: TestFarm;
  let env: Record<string, string>;
  before(async () => {
    farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*');
    env = farmEnv(farm);
    mkdirSync(join(farm.root, 'etc'), { recursive: true });
  });
  after(async () => {
    await farm.dispose();
  });

  for (const sandbox of ['none', 'bwrap'] as const) {
    it(`${sandbox === 'none' ? 'an unsandboxed' : 'a sandboxed'} build's processes end, and its workspace is removed at the next start`, async () => {
      const builder = `k${sandbox}${process.pid}`;
      const marker = `${sandbox === 'none' ? 301 : 302}.${process.pid}`;
      const job = `leftover-${sandbox}`;
      await addBuilder(farm.registry.db, builder, 'el9', 'x86_64');
      writeFileSync(
        join(farm.root, 'etc', `buildd-${builder}.yml`),
        `sandbox: ${sandbox}\nsandbox_dir: ${farm.builds}\n`,
      );
      await submitJob({
        files: [lingering(job, marker)],
        target: farm.incoming,
        bucket: 'devel',
        platforms: [],
        archs: [],
        report: [],
        id: job,
        submitter: null,
      });
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');

      const first = spawnPkgforge(['buildd', '--name', builder, '--daemon'], env);
      const log = join(farm.results, job, 'el9-x86_64', 'attempt-1', 'build.log');
      await eventually(
        'the build to start',
        () => existsSync(log) && readFileSync(log, 'utf8').includes(`started-${job}`),
        60_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${first.output()}\n${existsSync(log) ? readFileSync(log, 'utf8') : ''}`);
      });
      await eventually('both sleepers', () => sleepers(marker).length === 2);
      const base = join(farm.builds, builder);
      const workspaces = readdirSync(base);
      assert.equal(workspaces.length, 1);
      first.child.kill('SIGKILL');
      await first.exited;

      if (sandbox === 'bwrap') {
        // bubblewrap ends its sandbox with its parent: nothing waits for the next start.
        await eventually('the sandbox to die with its daemon', () => sleepers(marker).length === 0, 10_000);
      } else {
        // Nothing stops an unsandboxed build's process group when its daemon dies.
        assert.equal(sleepers(marker).length, 2);
      }
      // The task stops being wanted meanwhile, so the next start has nothing to build again.
      await cancelTasks(farm.registry, job);
      const second = spawnPkgforge(['buildd', '--name', builder, '--daemon'], env);
      try {
        await second.until(/removed 1 workspace left by an earlier run of this builder/);
        await second.until(/Starting build daemon/);
        assert.deepEqual(sleepers(marker), []);
        assert.deepEqual(readdirSync(base), []);
      } finally {
        second.child.kill('SIGTERM');
        assert.equal(await second.exited, 0, second.output());
      }
    });
  }
});

describe('expired leases', () => {
  let farm: TestFarm;
  before(async () => {
    farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*');
    await addBuilder(farm.registry.db, 'gone', 'el9', 'x86_64');
  });
  after(async () => farm.dispose());

  it('are requeued within lease + 5 s by whatever daemon runs, here the incoming processor alone', async () => {
    await submitTo(farm, 'leased', [srpm('leased')]);
    assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
    const stop = new AbortController();
    const daemon = runIncomingDaemon(farm.ctx(), { pollSeconds: 60, signal: stop.signal });
    try {
      const leaseMs = 1000;
      // A builder claims the task and dies at once: nobody renews the lease.
      const claim = await claimNextTask(
        farm.registry,
        (await builderIdentity(farm.registry.db, 'gone'))!,
        'deadhost[1]',
        leaseMs,
      );
      const claimedAt = Date.now();
      assert.ok(claim);
      await eventually(
        'the task to return to the queue',
        async () => (await getJobDetail(farm.registry.db, 'leased'))!.tasks[0]!.status === 'needs build',
        15_000,
      );
      const elapsed = Date.now() - claimedAt;
      assert.ok(elapsed <= leaseMs + 5000, `requeued ${elapsed} ms after the claim`);
    } finally {
      stop.abort();
      await daemon;
    }
  });
});
