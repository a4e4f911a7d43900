/**
 * npm run bench:web — the HTTP API under load, on SQLite and PostgreSQL: a generated registry of
 * BENCH_JOBS jobs (default 100,000) with 5 tasks each, `pkgforge web` in its own process, and
 * 50 concurrent connections from autocannon on loopback for BENCH_SECONDS each: requests per
 * second and p50/p99 latency of the jobs list, a job, the queue (25,000 waiting tasks) and the jobs
 * page, and how late the server's event loop ran meanwhile (what each route costs every other
 * request). Targets: p99 ≤ 20 ms for the jobs list, ≤ 50 ms for the queue.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { makeRegistryConfig, type Dialect } from '../test/helpers/registries.ts';
import { openRegistry } from '../src/registry/registry.ts';
import { addPlatform, changePlatform } from '../src/registry/platforms.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 100_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROOT = join(import.meta.dirname, '..');
const PLATFORMS = ['el8', 'el9', 'el10', 'f41', 'f42'];

async function seed(dialect: Dialect) {
  const { config, drop } = await makeRegistryConfig(dialect);
  const registry = await openRegistry(config, { migrate: true });
  const ids: number[] = [];
  for (const name of PLATFORMS) {
    const p = await addPlatform(registry.db, name, 'x86_64');
    await changePlatform(registry.db, name, 'x86_64', 'activate');
    ids.push(p.id);
  }
  const now = Date.now();
  const batch = 1000;
  for (let start = 0; start < JOBS; start += batch) {
    const n = Math.min(batch, JOBS - start);
    await registry.db.transaction().execute(async (trx) => {
      const jobs = await trx
        .insertInto('jobs')
        .values(
          Array.from({ length: n }, (_, i) => ({
            uuid: `job-${start + i}`,
            bucket: i % 3 ? 'devel' : 'lcfg',
            submitter: `user${(start + i) % 50}`,
            status: 'success' as const,
            reason: null,
            size: 12345,
            platforms: '["auto"]',
            archs: '["all"]',
            report: '[]',
            submitted_at: now - (JOBS - start - i) * 1000,
            incoming_entry: null,
            created_at: now,
            modified_at: now,
          })),
        )
        .returning('id')
        .execute();
      const tasks = jobs.flatMap((j, i) =>
        ids.map((pid) => ({
          job_id: j.id,
          platform_id: pid,
          status: (start + i) % 20 === 0 ? ('needs build' as const) : ('success' as const),
          reason: null,
          queued_at: now - (JOBS - start - i) * 1000,
          attempt: 1,
          created_at: now,
          modified_at: now,
        })),
      );
      for (let k = 0; k < tasks.length; k += 1000)
        await trx
          .insertInto('tasks')
          .values(tasks.slice(k, k + 1000))
          .execute();
    });
  }
  await registry.close();
  return { url: config.type === 'sqlite' ? `sqlite:${config.path}` : config.connectionString!, drop };
}

async function load(url: string) {
  const r = await autocannon({ url, connections: 50, duration: SECONDS });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

/**
 * The server's event-loop lateness since the last call (its /metrics, which resets it), in ms: how
 * long any request, of any route, may have waited behind the one being measured.
 */
async function eventLoopDelay(port: number) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const q = (quantile: string) =>
    1000 *
    Number(new RegExp(`pkgforge_web_event_loop_delay_seconds\\{quantile="${quantile}"\\} (\\S+)`).exec(text)?.[1]);
  return { p99: q('0.99'), max: q('1') };
}

execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
console.log(
  `PkgForge web benchmark: ${JOBS} jobs, ${JOBS * PLATFORMS.length} tasks, 50 connections, ${SECONDS} s per route`,
);
// BENCH_DIALECT and BENCH_ROUTE narrow the run; BENCH_PROFILE=dir keeps the server's CPU profile.
const DIALECTS = (['sqlite', 'postgresql'] as const).filter((d) => (process.env.BENCH_DIALECT ?? d) === d);
for (const dialect of DIALECTS) {
  const started = performance.now();
  const { url, drop } = await seed(dialect);
  const seeded = (performance.now() - started) / 1000;
  const home = mkdtempSync(join(tmpdir(), 'pkgforge-bench-web-'));
  const port = 18000 + Math.floor(Math.random() * 1000);
  const server = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []),
      join(ROOT, 'bin', 'pkgforge.js'),
      'web',
      '--listen',
      `127.0.0.1:${port}`,
    ],
    {
      env: { ...process.env, PKGFORGE_HOME: home, PKGFORGE_REGISTRY: url },
      stdio: 'ignore',
    },
  );
  try {
    for (;;) {
      if (
        await fetch(`http://127.0.0.1:${port}/api/v1/platforms`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      await sleep(100);
    }
    console.log(`${dialect} (seeded in ${seeded.toFixed(0)} s):`);
    for (const [label, path] of [
      ['jobs list', '/api/v1/jobs'],
      ['job', `/api/v1/jobs/job-${Math.floor(JOBS / 2)}`],
      ['queue', '/api/v1/queue'],
      ['jobs page (HTML)', '/'],
    ] as const) {
      if ((process.env.BENCH_ROUTE ?? label) !== label) continue;
      await eventLoopDelay(port); // from here on
      const r = await load(`http://127.0.0.1:${port}${path}`);
      const delay = await eventLoopDelay(port);
      const target = { 'jobs list': '  (target p99 ≤ 20 ms)', queue: '  (target p99 ≤ 50 ms)' }[label as string] ?? '';
      console.log(
        `  ${label.padEnd(17)} ${r.rps.toFixed(0).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms${r.errors ? `  errors ${r.errors}` : ''}; event loop late by p99 ${delay.p99.toFixed(1)} ms, at most ${delay.max.toFixed(1)} ms${target}`,
      );
    }
  } finally {
    server.kill('SIGTERM');
    await once(server, 'exit');
    rmSync(home, { recursive: true, force: true });
    await drop();
  }
}
