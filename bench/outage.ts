/**
 * npm run bench:outage — how quickly the farm settles after a registry outage, on the real
 * PostgreSQL behind a TCP proxy that is stopped and started (as in test/buildd/outage.test.ts),
 * with an incoming daemon and a build daemon running as separate processes:
 *   - settle: from the registry's return to the result of a build that ended during the outage
 *     being recorded (and published);
 *   - claim after: from the registry's return to the claim of a job submitted at that moment;
 *   - requeue: from a dead builder's lease expiry to its task being back in the queue;
 * each against the reference measured in the same run: submit → claim of the same job with the
 * registry up. BENCH_RUNS (default 3), BENCH_OUTAGE_SECONDS (default 10).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { submitJob } from '../src/incoming/submit-job.ts';
import { builderIdentity, claimNextTask, listAttempts } from '../src/registry/attempts.ts';
import { addBuilder } from '../src/registry/builders.ts';
import { getJobDetail } from '../src/registry/jobs.ts';
import { cancelTasks } from '../src/registry/tasks.ts';
import { addPlatforms, eventually, makeFarm, spawnPkgforge } from '../test/helpers/farm.ts';
import { buildRpm, specFor, srpm } from '../test/helpers/srpm.ts';
import { TcpProxy } from '../test/helpers/tcp-proxy.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const OUTAGE_MS = Number(process.env.BENCH_OUTAGE_SECONDS ?? 10) * 1000;
const LEASE_MS = 2000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const farm = await makeFarm('postgresql');
await addPlatforms(farm, 'el9/x86_64*', 'el8/x86_64');
await addBuilder(farm.registry.db, 'ob', 'el9', 'x86_64');
await addBuilder(farm.registry.db, 'dead', 'el8', 'x86_64');
const proxy = await new TcpProxy({ host: '127.0.0.1', port: 5432 }).start();
const env = {
  PKGFORGE_HOME: farm.root,
  HOME: farm.root,
  PKGFORGE_REGISTRY: proxy.urlFor(farm.config.type === 'postgresql' ? farm.config.connectionString! : ''),
  PKGFORGE_INCOMING: farm.incoming,
  PKGFORGE_ACCEPTED: farm.accepted,
  PKGFORGE_RESULTS: farm.results,
  PKGFORGE_REPOS: join(farm.root, 'repos'),
  PKGFORGE_POLL: '60',
};
mkdirSync(join(farm.root, 'etc'), { recursive: true });
writeFileSync(join(farm.root, 'etc', 'buildd.yml'), 'publishers: []\n');
const incoming = spawnPkgforge(['incoming', '--daemon'], env);
const buildd = spawnPkgforge(['buildd', '--name', 'ob', '--daemon'], env);
await buildd.until(/Starting build daemon/);
await incoming.until(/Starting incoming queue processing daemon/);

const tiny = srpm('tiny');
const ticking = buildRpm(
  specFor('ticking').replace('%install', '%build\nfor i in 1 2; do echo tick-$i; sleep 1; done\n%install'),
);
const submit = (id: string, file: string) =>
  submitJob({
    files: [file],
    target: farm.incoming,
    bucket: 'devel',
    platforms: ['el9'],
    archs: [],
    report: [],
    id,
    submitter: null,
  });
const task = async (id: string) => (await getJobDetail(farm.registry.db, id))?.tasks[0];
const claimedAt = (id: string) =>
  eventually(
    `${id} to be claimed`,
    async () => {
      const t = await task(id);
      return t && t.attempt > 0 ? (await listAttempts(farm.registry.db, t.id))[0]!.startedAt : null;
    },
    120_000,
    10,
  );

const reference: number[] = [];
const settle: number[] = [];
const claimAfter: number[] = [];
const requeue: number[] = [];
try {
  for (let run = 0; run < RUNS; run++) {
    const ref = `ref-${run}`;
    const t0 = Date.now();
    await submit(ref, tiny);
    reference.push((await claimedAt(ref)) - t0);
    await eventually('the reference to finish', async () => (await task(ref))?.status === 'success', 120_000, 20);

    const during = `during-${run}`;
    await submit(during, ticking);
    const log = join(farm.results, during, 'el9-x86_64', 'attempt-1', 'build.log');
    await eventually(
      'the build to start',
      () => existsSync(log) && readFileSync(log, 'utf8').includes('tick-1'),
      120_000,
      20,
    );
    await proxy.stop();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await proxy.start();
    const back = Date.now();
    const after = `after-${run}`;
    await submit(after, tiny);
    await eventually(
      'the kept result to be recorded',
      async () => (await task(during))?.status === 'success',
      120_000,
      10,
    );
    settle.push(Date.now() - back);
    claimAfter.push((await claimedAt(after)) - back);
    await eventually('the job after to finish', async () => (await task(after))?.status === 'success', 120_000, 20);

    const leased = `leased-${run}`;
    await submitJob({
      files: [tiny],
      target: farm.incoming,
      bucket: 'devel',
      platforms: ['el8'],
      archs: [],
      report: [],
      id: leased,
      submitter: null,
    });
    await eventually('the el8 task', async () => (await task(leased))?.status === 'needs build', 60_000, 10);
    await claimNextTask(farm.registry, (await builderIdentity(farm.registry.db, 'dead'))!, 'gone[1]', LEASE_MS);
    const expires = Date.now() + LEASE_MS;
    await eventually('the lease to be reaped', async () => (await task(leased))?.status === 'needs build', 60_000, 10);
    requeue.push(Date.now() - expires);
    // Out of the next run's way (it claims the oldest el8 task).
    await cancelTasks(farm.registry, leased);
  }
} finally {
  for (const c of [buildd, incoming]) c.child.kill('SIGTERM');
  await Promise.all([buildd.exited, incoming.exited]);
  await proxy.stop();
  await farm.dispose();
}

const ref = median(reference);
const row = (what: string, xs: number[]) =>
  console.log(
    `${what.padEnd(50)} median ${String(median(xs)).padStart(6)} ms  max ${String(Math.max(...xs)).padStart(6)} ms  ÷ reference ${(median(xs) / ref).toFixed(1)}`,
  );
console.log(`registry outage of ${OUTAGE_MS / 1000} s, ${RUNS} runs, PostgreSQL through a proxy`);
row('reference: submit → claim, registry up', reference);
row('settle: return → ended build recorded', settle);
row('claim after: return → new job claimed', claimAfter);
row(`requeue: lease expiry → back in queue (lease ${LEASE_MS / 1000} s)`, requeue);
