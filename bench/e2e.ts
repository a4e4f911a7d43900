/**
 * npm run bench:e2e — from `pkgforge submit` to a `success` job for one small noarch SRPM on the
 * embedded default (`pkgforge serve`: SQLite, incoming processor and a builder in one process,
 * publishing with createrepo_c), divided by a bare `rpmbuild --rebuild` of the same SRPM measured
 * in the same run. Target: at most 1.5. BENCH_RUNS changes the number of runs.
 * The same is measured for a package whose build takes BENCH_BUILD_SECONDS (default 3), to show
 * the farm's fixed overhead against a build of more realistic length.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildRpm, specFor, srpm } from '../test/helpers/srpm.ts';
import { openRegistry } from '../src/registry/registry.ts';
import { findJob } from '../src/registry/jobs.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const ROOT = join(import.meta.dirname, '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });
const home = mkdtempSync(join(tmpdir(), 'pkgforge-bench-e2e-'));
const env = { ...process.env, PKGFORGE_HOME: home, PKGFORGE_PLATFORM: 'el9' };
const serve = spawn(process.execPath, [join(ROOT, 'bin', 'pkgforge.js'), 'serve'], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
serve.stdout!.on('data', (d: Buffer) => (out += d.toString()));
while (!out.includes('Submit a job')) await sleep(50);
const registry = await openRegistry({ type: 'sqlite', path: join(home, 'registry.db') });
const BUILD_SECONDS = Number(process.env.BENCH_BUILD_SECONDS ?? 3);
const packages: [string, string][] = [
  ['a tiny noarch package', srpm('benchhello')],
  [
    `a package whose build takes ${BUILD_SECONDS} s`,
    buildRpm(specFor('benchslow').replace('%install', `%build\nsleep ${BUILD_SECONDS}\n%install`)),
  ],
];
const results: { label: string; refs: number[]; farm: number[]; server: number[] }[] = [];
try {
  for (const [label, pkg] of packages) {
    const refs: number[] = [];
    const farm: number[] = [];
    const server: number[] = [];
    results.push({ label, refs, farm, server });
    for (let run = 0; run <= RUNS; run++) {
      const top = mkdtempSync(join(tmpdir(), 'pkgforge-bench-rpmbuild-'));
      const t0 = performance.now();
      execFileSync('rpmbuild', ['--rebuild', '--nodeps', '--quiet', '--define', `_topdir ${top}`, pkg], {
        stdio: 'ignore',
      });
      const ref = performance.now() - t0;
      rmSync(top, { recursive: true, force: true });

      const id = `e2e-${results.length}-${run}`;
      const t1 = performance.now();
      execFileSync(
        process.execPath,
        [join(ROOT, 'bin', 'pkgforge.js'), 'submit', '--bucket', 'devel', '--id', id, pkg],
        { env, stdio: 'ignore' },
      );
      const landed = performance.now();
      for (;;) {
        const job = await findJob(registry.db, id);
        if (job?.status === 'success') break;
        if (job && ['fail', 'invalid', 'partial fail'].includes(job.status))
          throw new Error(`job ${id} ended ${job.status}: ${job.reason}`);
        await sleep(5);
      }
      const total = performance.now() - t1;
      if (run === 0) continue; // warm-up
      refs.push(ref);
      farm.push(total);
      server.push(performance.now() - landed);
    }
    if (BUILD_SECONDS <= 0) break;
  }
} finally {
  await registry.close();
  serve.kill('SIGTERM');
  await once(serve, 'exit');
  rmSync(home, { recursive: true, force: true });
}
console.log(`PkgForge end-to-end benchmark (${RUNS} runs after a warm-up, each; pkgforge serve on SQLite)`);
for (const { label, refs, farm, server } of results) {
  const ratios = farm.map((f, i) => f / refs[i]!);
  console.log(
    `${label}: submit -> success median ${median(farm).toFixed(0)} ms; bare rpmbuild --rebuild median ${median(refs).toFixed(0)} ms; ratio median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)}; target <= 1.5)`,
  );
  console.log(
    `  of which after the submit command returned (the farm's own work): median ${median(server).toFixed(0)} ms, ratio ${median(server.map((x, i) => x / refs[i]!)).toFixed(2)}`,
  );
}
