/**
 * npm run bench:claim — the claim path of the build daemons, on SQLite and PostgreSQL:
 *   1. 10,000 registered tasks drained by 8 concurrent no-op builder processes: claims per second
 *      and duplicates (must be 0);
 *   2. 8 idle `pkgforge buildd --daemon` processes (polling once a minute): the time from a task's
 *      registration to its claim (median and p99), against the original's 60 s poll.
 *   3. The HTTP mode: the same two through a real `pkgforge web` and its builder API (remote
 *      builders, `pkgforge buildd --server`): 8 no-op remote builder processes draining the tasks
 *      (claims/s and duplicates, and the ratio to the direct mode of 1.; target ≥ 0.5×), and 8 idle
 *      ones long-polling (registration to claim; target median ≤ 20 ms).
 * BENCH_TASKS, BENCH_WORKERS and BENCH_LATENCY_TASKS change the sizes. BENCH_SCALE=1 runs the scale
 * mode instead (see scale()).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeRegistryConfig, type Dialect } from '../test/helpers/registries.ts';
import { openRegistry, type Registry } from '../src/registry/registry.ts';
import { addPlatform, changePlatform } from '../src/registry/platforms.ts';
import { addBuilder } from '../src/registry/builders.ts';
import { registerTasks } from '../src/registry/tasks.ts';
import { bundledHelper } from './bundle.ts';
import { sql } from 'kysely';
import { MANIFEST_FILE, normaliseManifest, serialiseManifest } from '../src/core/manifest.ts';
import { insertJob } from '../src/registry/jobs.ts';
import { createBuilderToken } from '../src/registry/tokens.ts';

const TASKS = Number(process.env.BENCH_TASKS ?? 10_000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 8);
const LATENCY_TASKS = Number(process.env.BENCH_LATENCY_TASKS ?? 200);
const ROOT = join(import.meta.dirname, '..');
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function setup(dialect: Dialect) {
  const { config, drop } = await makeRegistryConfig(dialect);
  const registry = await openRegistry(config, { migrate: true });
  await addPlatform(registry.db, 'el9', 'x86_64');
  await changePlatform(registry.db, 'el9', 'x86_64', 'activate');
  await changePlatform(registry.db, 'el9', 'x86_64', 'setauto');
  for (let i = 0; i < WORKERS; i++) await addBuilder(registry.db, `b${i}`, 'el9', 'x86_64');
  const url = config.type === 'sqlite' ? config.path : config.connectionString!;
  return { registry, url, drop };
}

/** Registers `count` single-task jobs, in bulk. */
async function seedTasks(registry: Registry, count: number) {
  const platform = await registry.db.selectFrom('platforms').select('id').executeTakeFirstOrThrow();
  const now = Date.now();
  for (let start = 0; start < count; start += 500) {
    const n = Math.min(500, count - start);
    const jobs = await registry.db
      .insertInto('jobs')
      .values(
        Array.from({ length: n }, (_, i) => ({
          uuid: `seed-${start + i}`,
          bucket: 'devel',
          submitter: null,
          status: 'registered' as const,
          reason: null,
          size: 1,
          platforms: '["auto"]',
          archs: '["all"]',
          report: '[]',
          submitted_at: now + start + i,
          incoming_entry: null,
          created_at: now,
          modified_at: now,
        })),
      )
      .returning('id')
      .execute();
    await registry.db
      .insertInto('tasks')
      .values(
        jobs.map((j, i) => ({
          job_id: j.id,
          platform_id: platform.id,
          status: 'needs build' as const,
          reason: null,
          queued_at: now + start + i,
          attempt: 0,
          created_at: now,
          modified_at: now,
        })),
      )
      .execute();
  }
}

async function throughput(dialect: Dialect) {
  const { registry, url, drop } = await setup(dialect);
  await seedTasks(registry, TASKS);
  const worker = await bundledHelper('claim-worker');
  const workers = Array.from({ length: WORKERS }, (_, i) =>
    spawn(
      process.execPath,
      [
        ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []),
        worker,
        url,
        `b${i}`,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    ),
  );
  const result = await drained(workers);
  await registry.close();
  await drop();
  return result;
}

/**
 * Once every worker process has exited: the claims they printed, from the first claim of any
 * worker to the last (the workers' start-up is not the claim path), and the duplicates among them.
 */
async function drained(workers: ChildProcess[]) {
  const outputs = await Promise.all(
    workers.map(async (w) => {
      let out = '';
      w.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await once(w, 'exit');
      return JSON.parse(out) as { claimed: number[]; first: number; last: number };
    }),
  );
  const seconds = (Math.max(...outputs.map((o) => o.last)) - Math.min(...outputs.map((o) => o.first))) / 1000;
  const claimed = outputs.flatMap((o) => o.claimed);
  return {
    claimsPerSecond: claimed.length / seconds,
    claimed: claimed.length,
    duplicates: claimed.length - new Set(claimed).size,
    seconds,
  };
}

/** Resolves once `count` builders have sent a heartbeat (passed their start). */
async function heartbeats(registry: Registry, count: number): Promise<void> {
  for (;;) {
    const ready = await registry.db
      .selectFrom('builders')
      .select('id')
      .where('last_heartbeat_at', 'is not', null)
      .execute();
    if (ready.length === count) return;
    await sleep(200);
  }
}

/** The build.yml of a one-package job `id` (no package is built: the tasks are claimed and ended). */
const noOpManifest = (id: string) =>
  normaliseManifest(
    { id, bucket: 'devel', packages: [{ file: 'x.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }] },
    id,
  );

/**
 * Registers LATENCY_TASKS jobs one at a time, 20 to 50 ms apart (`before` is called with each id
 * first), then resolves with the waits from each registration to its claim.
 */
async function registerAndWait(registry: Registry, before: (id: string) => void = () => {}) {
  for (let i = 0; i < LATENCY_TASKS; i++) {
    const m = noOpManifest(`lat-${i}`);
    before(m.id);
    await insertJob(registry, m, { submitter: null, submittedAt: Date.now(), incomingEntry: null });
    await registerTasks(registry, m.id, ['auto'], ['all'], 'rpm');
    await sleep(20 + Math.random() * 30);
  }
  return claimWaits(registry);
}

/**
 * Starts `count` idle `pkgforge buildd --daemon` processes (builders b0…), polling once a minute,
 * and returns once every one has passed its preflight (its first heartbeat).
 */
async function startIdleDaemons(registry: Registry, registryUrl: string, count: number) {
  const home = mkdtempSync(join(tmpdir(), 'pkgforge-bench-claim-'));
  for (const d of ['incoming', 'accepted', 'results', 'tmp']) mkdirSync(join(home, d));
  const env = { ...process.env, PKGFORGE_HOME: home, PKGFORGE_REGISTRY: registryUrl, PKGFORGE_POLL: '60' };
  const daemons: ChildProcess[] = Array.from({ length: count }, (_, i) =>
    spawn(process.execPath, [join(ROOT, 'bin', 'pkgforge.js'), 'buildd', '--name', `b${i}`, '--daemon'], {
      env,
      stdio: 'ignore',
    }),
  );
  await heartbeats(registry, count);
  return { home, daemons };
}

async function latency(dialect: Dialect) {
  const { registry, url, drop } = await setup(dialect);
  const { home, daemons } = await startIdleDaemons(registry, dialect === 'sqlite' ? `sqlite:${url}` : url, WORKERS);
  try {
    // Time to LISTEN, or to watch the wake file.
    await sleep(1500);
    return await registerAndWait(registry);
  } finally {
    for (const d of daemons) d.kill('SIGTERM');
    await Promise.all(daemons.map((d) => (d.exitCode === null ? once(d, 'exit') : null)));
    await registry.close();
    await drop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** A farm's data directory for `pkgforge web`, with accepted copies of the tasks' jobs (the claim answers their build.yml). */
function farmHome(jobIds: string[]): string {
  const home = mkdtempSync(join(tmpdir(), 'pkgforge-bench-http-'));
  for (const d of ['incoming', 'accepted', 'results', 'repos', 'tmp']) mkdirSync(join(home, d), { mode: 0o755 });
  for (const id of jobIds) acceptedCopy(home, id);
  return home;
}

function acceptedCopy(home: string, id: string): void {
  mkdirSync(join(home, 'accepted', id));
  writeFileSync(join(home, 'accepted', id, MANIFEST_FILE), serialiseManifest(noOpManifest(id)));
}

/** Starts `pkgforge web` on the registry, for remote builders; resolves with its address once it listens. */
async function startFarmServer(dialect: Dialect, url: string, home: string) {
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []),
      join(ROOT, 'bin', 'pkgforge.js'),
      'web',
      '--listen',
      '127.0.0.1:0',
    ],
    {
      env: { ...process.env, PKGFORGE_HOME: home, PKGFORGE_REGISTRY: dialect === 'sqlite' ? `sqlite:${url}` : url },
      // Its log (a line per finished task) is not the benchmark's output.
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  let out = '';
  const server = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /PkgForge API at (http:\/\/\S+)\/api\/v1/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`pkgforge web exited (${code}): ${out}`)));
  });
  return { server, child };
}

async function builderTokens(registry: Registry): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < WORKERS; i++) tokens.push((await createBuilderToken(registry.db, `b${i}`)).token);
  return tokens;
}

/** 1. over HTTP: no-op remote builder processes drain the tasks through a real server's builder API. */
async function httpThroughput(dialect: Dialect) {
  const { registry, url, drop } = await setup(dialect);
  await seedTasks(registry, TASKS);
  const home = farmHome(Array.from({ length: TASKS }, (_, i) => `seed-${i}`));
  const tokens = await builderTokens(registry);
  const { server, child } = await startFarmServer(dialect, url, home);
  try {
    const worker = await bundledHelper('claim-http-worker');
    return await drained(
      tokens.map((token) =>
        spawn(process.execPath, [worker, server, token, 'drain'], { stdio: ['ignore', 'pipe', 'inherit'] }),
      ),
    );
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    await registry.close();
    await drop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** 2. over HTTP: idle remote builders long-polling; the time from a registration to its claim. */
async function httpLatency(dialect: Dialect) {
  const { registry, url, drop } = await setup(dialect);
  const home = farmHome([]);
  const tokens = await builderTokens(registry);
  const { server, child } = await startFarmServer(dialect, url, home);
  const worker = await bundledHelper('claim-http-worker');
  const idle = tokens.map((token) => spawn(process.execPath, [worker, server, token, 'idle'], { stdio: 'ignore' }));
  try {
    await heartbeats(registry, WORKERS);
    await sleep(1000);
    return await registerAndWait(registry, (id) => acceptedCopy(home, id));
  } finally {
    for (const w of idle) w.kill('SIGTERM');
    await Promise.all(idle.map((w) => (w.exitCode === null ? once(w, 'exit') : null)));
    child.kill('SIGTERM');
    await once(child, 'exit');
    await registry.close();
    await drop();
    rmSync(home, { recursive: true, force: true });
  }
}

/** Once every registered task's first attempt started: the waits from registration to claim. */
async function claimWaits(registry: Registry) {
  for (;;) {
    const waiting = await registry.db.selectFrom('attempts').select('id').where('number', '=', 1).execute();
    if (waiting.length >= LATENCY_TASKS) break;
    await sleep(100);
  }
  const rows = await registry.db
    .selectFrom('attempts')
    .innerJoin('tasks', 'tasks.id', 'attempts.task_id')
    .select(['attempts.started_at', 'tasks.created_at'])
    .where('attempts.number', '=', 1)
    .execute();
  const waits = rows.map((r) => r.started_at - r.created_at);
  return { median: quantile(waits, 0.5), p99: quantile(waits, 0.99) };
}

/** Connections to the benchmark's database now, from pg_stat_activity. */
async function connections(registry: Registry): Promise<number> {
  const r = await sql<{
    n: number;
  }>`select count(*)::int as n from pg_stat_activity where datname = current_database()`.execute(registry.db);
  return r.rows[0]!.n;
}

/** Samples the database's connections every `everyMs` until stopped; `stop` returns the most seen. */
function peakConnections(registry: Registry, everyMs: number) {
  let peak = 0;
  const timer = setInterval(
    () =>
      void connections(registry).then(
        (n) => (peak = Math.max(peak, n)),
        () => {},
      ),
    everyMs,
  );
  return { stop: () => (clearInterval(timer), peak) };
}

/**
 * What the database has served so far: transactions (every statement outside one is one) and
 * sessions. A session's start-up counts as a transaction of its own in pg_stat_database, so the
 * queries are the difference.
 */
async function served(registry: Registry): Promise<{ queries: number; sessions: number }> {
  const r = await sql<{ xacts: number; sessions: number }>`select (xact_commit + xact_rollback)::bigint as xacts,
    sessions::bigint as sessions from pg_stat_database where datname = current_database()`.execute(registry.db);
  const row = r.rows[0]!;
  return { queries: Number(row.xacts) - Number(row.sessions), sessions: Number(row.sessions) };
}

/**
 * The scale mode (BENCH_SCALE=1): SCALE_BUILDERS builder processes on PostgreSQL draining
 * SCALE_TASKS tasks (claims/s, duplicates, peak connections), then as many idle `pkgforge buildd
 * --daemon` processes (their connections, and the queries per builder per 10 s they cost, from
 * pg_stat_database).
 */
async function scale() {
  const builders = Number(process.env.BENCH_SCALE_BUILDERS ?? 64);
  const tasks = Number(process.env.BENCH_SCALE_TASKS ?? 20_000);
  const idleSeconds = Number(process.env.BENCH_SCALE_IDLE_SECONDS ?? 60);
  const { config, drop } = await makeRegistryConfig('postgresql');
  const registry = await openRegistry(config, { migrate: true, poolSize: 2 });
  try {
    await addPlatform(registry.db, 'el9', 'x86_64');
    await changePlatform(registry.db, 'el9', 'x86_64', 'activate');
    await changePlatform(registry.db, 'el9', 'x86_64', 'setauto');
    for (let i = 0; i < builders; i++) await addBuilder(registry.db, `b${i}`, 'el9', 'x86_64');
    await seedTasks(registry, tasks);
    const url = (config as { connectionString: string }).connectionString;
    const worker = await bundledHelper('claim-worker');
    const sampler = peakConnections(registry, 100);
    const t = await drained(
      Array.from({ length: builders }, (_, i) =>
        spawn(process.execPath, [worker, url, `b${i}`], { stdio: ['ignore', 'pipe', 'inherit'] }),
      ),
    );
    const peak = sampler.stop();
    console.log(
      `3. scale: ${builders} builder processes drained ${t.claimed} tasks in ${t.seconds.toFixed(1)} s: ${t.claimsPerSecond.toFixed(0)} claims/s, duplicates ${t.duplicates} (must be 0), peak connections ${peak} (${(peak / builders).toFixed(2)} per builder; target ≤ 2)`,
    );

    // Idle: real daemons, each listening for notifications and polling once a minute.
    await registry.db.updateTable('builders').set({ last_heartbeat_at: null }).execute();
    const { home, daemons } = await startIdleDaemons(registry, url, builders);
    try {
      // Past the start-up's queries and the pools' idle timeout (a second), then counted over the window.
      await sleep(5000);
      const before = await served(registry);
      const t0 = performance.now();
      const idleSampler = peakConnections(registry, 1000);
      await sleep(idleSeconds * 1000);
      const idlePeak = idleSampler.stop();
      const after = await served(registry);
      const seconds = (performance.now() - t0) / 1000;
      // The sampler's own statements (one a second) and these two are the benchmark's, not the builders'.
      const queries = after.queries - before.queries - Math.round(seconds) - 1;
      const perBuilderPer10s = (queries / builders / seconds) * 10;
      const connectsPerMinute = ((after.sessions - before.sessions) / builders / seconds) * 60;
      console.log(
        `4. scale: ${builders} idle daemons over ${idleSeconds} s: ${(queries / seconds).toFixed(1)} queries/s, ${perBuilderPer10s.toFixed(2)} per builder per 10 s (target ≤ 1); connections at most ${idlePeak} (${(idlePeak / builders).toFixed(2)} per builder), ${connectsPerMinute.toFixed(1)} opened per builder per minute`,
      );
    } finally {
      for (const d of daemons) d.kill('SIGTERM');
      await Promise.all(daemons.map((d) => (d.exitCode === null ? once(d, 'exit') : null)));
      rmSync(home, { recursive: true, force: true });
    }
  } finally {
    await registry.close();
    await drop();
  }
}

execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
if (process.env.BENCH_SCALE) {
  await scale();
  process.exit(0);
}
console.log(
  `PkgForge claim benchmark (${TASKS} tasks, ${WORKERS} builder processes; latency over ${LATENCY_TASKS} registrations)`,
);
const direct: Record<string, number> = {};
for (const dialect of ['sqlite', 'postgresql'] as const) {
  const t = await throughput(dialect);
  direct[dialect] = t.claimsPerSecond;
  console.log(
    `1. ${dialect.padEnd(10)} ${t.claimed} claims in ${t.seconds.toFixed(2)} s: ${t.claimsPerSecond.toFixed(0)} claims/s, duplicates ${t.duplicates} (must be 0)`,
  );
}
for (const dialect of ['sqlite', 'postgresql'] as const) {
  const l = await latency(dialect);
  console.log(
    `2. ${dialect.padEnd(10)} registration to claim by an idle daemon: median ${l.median} ms, p99 ${l.p99} ms${dialect === 'postgresql' ? ' (LISTEN/NOTIFY; target median ≤ 10 ms)' : ' (the wake file; target median ≤ 20 ms, p99 ≤ 100 ms)'}; ratio to the original's 60 s poll (median 30 s): ${(l.median / 30_000).toFixed(4)}`,
  );
}
for (const dialect of ['sqlite', 'postgresql'] as const) {
  const t = await httpThroughput(dialect);
  console.log(
    `3. ${dialect.padEnd(10)} over HTTP: ${t.claimed} claims and no-op finishes in ${t.seconds.toFixed(2)} s: ${t.claimsPerSecond.toFixed(0)} claims/s, duplicates ${t.duplicates} (must be 0); ratio to the direct mode: ${(t.claimsPerSecond / direct[dialect]!).toFixed(2)}× (target ≥ 0.5×)`,
  );
  const l = await httpLatency(dialect);
  console.log(
    `3. ${dialect.padEnd(10)} over HTTP: registration to claim by an idle remote builder (long-poll): median ${l.median} ms, p99 ${l.p99} ms (target median ≤ 20 ms)`,
  );
}
