import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listAttempts } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { openRegistry, type Registry } from '../../src/registry/registry.ts';
import {
  addPlatforms,
  eventually,
  farmEnv,
  makeFarm,
  spawnPkgforge,
  type PkgforgeChild,
  type TestFarm,
  submitTo,
} from '../helpers/farm.ts';
import { srpm, ticking } from '../helpers/srpm.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { farmApp } from '../helpers/web.ts';

// The farm's daemons reach the real PostgreSQL only through a proxy the test stops and starts, as
// an operator meets a registry that went away. Every publish appends a line to published.log.
describe('a registry outage, on PostgreSQL through a proxy the test controls', () => {
  let farm: TestFarm;
  let proxy: TcpProxy;
  let env: Record<string, string>;
  let publishLog: string;
  const children: PkgforgeChild[] = [];
  const start = (args: string[]) => {
    const c = spawnPkgforge(args, env);
    children.push(c);
    return c;
  };

  before(async () => {
    farm = await makeFarm('postgresql');
    await addPlatforms(farm, 'el9/x86_64*');
    await addBuilder(farm.registry.db, 'o1', 'el9', 'x86_64');
    proxy = await new TcpProxy({ host: '127.0.0.1', port: 5432 }).start();
    publishLog = join(farm.root, 'published.log');
    env = farmEnv(farm, {
      PKGFORGE_REGISTRY: proxy.urlFor(farm.config.type === 'postgresql' ? farm.config.connectionString! : ''),
      // The fallback poll is long, as in production: only notifications make claims quick.
      PKGFORGE_POLL: '60',
    });
    mkdirSync(join(farm.root, 'etc'), { recursive: true });
    writeFileSync(
      join(farm.root, 'etc', 'buildd.yml'),
      `publishers:\n  - command:\n      command: [sh, -c, 'for f; do echo "$f" >> ${publishLog}; done', publish]\n`,
    );
  });
  after(async () => {
    for (const c of children) c.child.kill('SIGKILL');
    await Promise.all(children.map((c) => c.exited));
    await proxy.stop();
    await farm.dispose();
  });

  const published = (name: string) =>
    existsSync(publishLog)
      ? readFileSync(publishLog, 'utf8')
          .split('\n')
          .filter((l) => l.includes(`/${name}-`)).length
      : 0;
  const buildLog = (job: string, attempt = 1) =>
    join(farm.results, job, 'el9-x86_64', `attempt-${attempt}`, 'build.log');
  const logSays = (job: string, text: string) =>
    existsSync(buildLog(job)) && readFileSync(buildLog(job), 'utf8').includes(text);
  const submit = (id: string, files: string[]) => submitTo(farm, id, files);
  const taskOf = async (job: string) => (await getJobDetail(farm.registry.db, job))?.tasks[0];

  it('a build that finishes during a 6 s outage (longer than the 5 s connect timeout) is recorded once and published once, the daemons keep running, and a job submitted after it is claimed within 2 s', async () => {
    const incoming = start(['incoming', '--daemon']);
    const buildd = start(['buildd', '--name', 'o1', '--daemon']);
    await buildd.until(/Starting build daemon 'o1'/);
    await incoming.until(/Starting incoming queue processing daemon/);
    // The web server sees the same registry: while it is away, reads are a clear 503, not a 500.
    const webRegistry: Registry = await openRegistry({ type: 'postgresql', connectionString: env.PKGFORGE_REGISTRY! });
    const app = await farmApp(farm, { registry: webRegistry, uploadMaxBytes: 1024 });
    try {
      await submit('during', [ticking('during', 4)]);
      await eventually('the build to start', () => logSays('during', 'tick-1'));

      await proxy.stop();
      const down = Date.now();
      const read = await app.inject({ method: 'GET', url: '/api/v1/jobs' });
      assert.equal(read.statusCode, 503, read.body);
      assert.equal(read.json().code, 'PKGF_ERR_UNAVAILABLE');
      assert.ok(read.headers['retry-after']);
      // The build ends while the registry is away; its outcome waits, kept on disk, unpublished.
      await eventually('the build to end', () => logSays('during', 'tick-4'), 30_000);
      await buildd.until(/registry unavailable .*retrying until/);
      assert.equal(published('during'), 0, 'nothing is published before the registry confirms the attempt');
      await new Promise((r) => setTimeout(r, Math.max(0, 6_000 - (Date.now() - down))));
      assert.equal(buildd.child.exitCode, null, buildd.output());
      assert.equal(incoming.child.exitCode, null, incoming.output());

      await proxy.start();
      const back = Date.now();
      await submit('after', [srpm('after')]);
      const task = await eventually('the first job to be recorded', async () =>
        (await taskOf('during'))?.status === 'success' ? taskOf('during') : null,
      );
      assert.equal(task!.attempt, 1, 'built once');
      assert.deepEqual(
        (await listAttempts(farm.registry.db, task!.id)).map((a) => a.outcome),
        ['success'],
      );
      assert.equal(published('during'), 1, 'published once');
      assert.match(readFileSync(buildLog('during'), 'utf8'), /finished: success/);
      // Promoted right after the finish is recorded, so a moment after the status says success.
      await eventually('the attempt to become the current results', () =>
        existsSync(join(farm.results, 'during', 'el9-x86_64', 'buildinfo.yml')),
      );

      const claimed = await eventually('the job submitted after the outage to be claimed', async () => {
        const t = await taskOf('after');
        return t && t.attempt > 0 ? (await listAttempts(farm.registry.db, t.id))[0] : null;
      });
      assert.ok(claimed.startedAt - back <= 2000, `claimed ${claimed.startedAt - back} ms after the registry's return`);
      await eventually('the second job to succeed', async () => (await taskOf('after'))?.status === 'success');
      assert.equal(published('after'), 1);
      // A second look: the daemons heard nothing twice.
      assert.equal(published('during'), 1);
      assert.equal(buildd.child.exitCode, null);
    } finally {
      await app.close();
      await webRegistry.close();
      for (const c of [buildd, incoming]) c.child.kill('SIGTERM');
      await Promise.all([buildd.exited, incoming.exited]);
    }
  });

  it('a daemon restarted during the outage records the outcome its predecessor kept, without building again', async () => {
    const incoming = start(['incoming', '--daemon']);
    const first = start(['buildd', '--name', 'o1', '--daemon']);
    await first.until(/Starting build daemon 'o1'/);
    try {
      await submit('restart', [ticking('restart', 2)]);
      await eventually('the build to start', () => logSays('restart', 'tick-1'));
      await proxy.stop();
      await first.until(/registry unavailable .*retrying until/);
      first.child.kill('SIGKILL');
      await first.exited;

      const second = start(['buildd', '--name', 'o1', '--daemon']);
      await second.until(/registry unavailable .*waiting for it/);
      await proxy.start();
      await second.until(/Recording the outcome 'success' of restart \(attempt 1\)/);
      const task = await eventually('the kept outcome to be recorded', async () =>
        (await taskOf('restart'))?.status === 'success' ? taskOf('restart') : null,
      );
      assert.equal(task!.attempt, 1, 'not built again');
      assert.deepEqual(
        (await listAttempts(farm.registry.db, task!.id)).map((a) => a.outcome),
        ['success'],
      );
      assert.equal(published('restart'), 1);
      const log = readFileSync(buildLog('restart'), 'utf8');
      assert.equal(log.match(/building restart-/g)?.length, 1, log);
      assert.match(
        log,
        /recording the outcome this attempt had reached and kept, which the registry had not heard: success[\s\S]*finished: success/,
      );
      second.child.kill('SIGTERM');
      assert.equal(await second.exited, 0, second.output());
    } finally {
      incoming.child.kill('SIGTERM');
      await incoming.exited;
    }
  });

  it('an idle daemon listens again after the outage: a job registered then is claimed at once, not at the next poll', async () => {
    const buildd = start(['buildd', '--name', 'o1', '--daemon']);
    try {
      await buildd.until(/Starting build daemon 'o1'/);
      await proxy.stop();
      await buildd.until(/task notifications lost/);
      await proxy.start();
      await buildd.until(/task notifications are back/);
      // Registered by this process on the server directly: only a notification can wake the daemon
      // before its 60 s poll.
      await submit('heard', [srpm('heard')]);
      const registered = Date.now();
      const { runIncomingPass } = await import('../../src/incoming/processor.ts');
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      const claimed = await eventually(
        'the job to be claimed',
        async () => {
          const t = await taskOf('heard');
          return t && t.attempt > 0 ? (await listAttempts(farm.registry.db, t.id))[0] : null;
        },
        10_000,
        20,
      );
      assert.ok(
        claimed.startedAt - registered <= 2000,
        `claimed ${claimed.startedAt - registered} ms after registration`,
      );
      await eventually('the job to succeed', async () => (await taskOf('heard'))?.status === 'success');
    } finally {
      buildd.child.kill('SIGTERM');
      await buildd.exited;
    }
  });

  it('a daemon told to stop while it waits for the registry stops cleanly', async () => {
    await proxy.stop();
    try {
      const buildd = start(['buildd', '--name', 'o1', '--daemon']);
      await buildd.until(/registry unavailable .*waiting for it/);
      buildd.child.kill('SIGTERM');
      assert.equal(await buildd.exited, 0, buildd.output());
      assert.match(buildd.output(), /stopped while waiting for the registry/);
    } finally {
      await proxy.start();
    }
  });
});
