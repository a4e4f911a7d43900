/**
 * npm run bench:incoming — the incoming processor's figures, each against a reference measured in
 * the same run on the same machine:
 *   1. jobs per second for one pass over 1,000 single-package jobs, on SQLite and PostgreSQL;
 *   2. one job of 1 GiB: the pass's time divided by `sha1sum` + `cp` + `sha1sum` of the same bytes,
 *      and the pass's peak memory.
 * Set BENCH_JOBS or BENCH_GIB to change the sizes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import YAML from 'yaml';
import { makeRegistryConfig, type Dialect } from '../test/helpers/registries.ts';
import { srpm } from '../test/helpers/srpm.ts';
import { openRegistry } from '../src/registry/registry.ts';
import { addPlatform, changePlatform } from '../src/registry/platforms.ts';
import { bundledHelper } from './bundle.ts';

const JOBS = Number(process.env.BENCH_JOBS ?? 1000);
const GIB = Number(process.env.BENCH_GIB ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PASS = await bundledHelper('incoming-pass');
const root = mkdtempSync(join(tmpdir(), 'pkgforge-bench-'));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sha = (path: string, alg: string) =>
  execFileSync(alg === 'sha1' ? 'sha1sum' : 'sha256sum', [path])
    .toString()
    .split(' ')[0]!;

function writeJob(incoming: string, id: string, file: string, sums: { size: number; sha1: string; sha256: string }) {
  const dir = join(incoming, id);
  mkdirSync(dir);
  const name = file.split('/').pop()!;
  copyFileSync(file, join(dir, name));
  writeFileSync(
    join(dir, 'build.yml'),
    YAML.stringify({
      id,
      bucket: 'devel',
      packages: [{ file: name, type: 'SRPM', size: sums.size, sha1sum: sums.sha1, sha256sum: sums.sha256 }],
    }),
  );
}

async function farm(dialect: Dialect) {
  const { config, drop } = await makeRegistryConfig(dialect);
  const registry = await openRegistry(config, { migrate: true });
  for (const arch of ['x86_64', 'aarch64']) {
    await addPlatform(registry.db, 'el9', arch);
    await changePlatform(registry.db, 'el9', arch, 'activate');
    await changePlatform(registry.db, 'el9', arch, 'setauto');
  }
  await registry.close();
  const dir = mkdtempSync(join(root, `${dialect}-`));
  const incoming = join(dir, 'incoming');
  const accepted = join(dir, 'accepted');
  mkdirSync(incoming);
  mkdirSync(accepted);
  const url = config.type === 'sqlite' ? `sqlite:${config.path}` : config.connectionString!;
  return { incoming, accepted, url, drop };
}

function runPass(f: { incoming: string; accepted: string; url: string }) {
  const r = spawnSync(
    process.execPath,
    [
      ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []),
      PASS,
      f.incoming,
      f.accepted,
      f.url,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`pass failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    ms: number;
    cpuMs: number;
    maxRssKb: number;
    registered: number;
    problems: string[];
  };
}

async function manyJobs(dialect: Dialect) {
  const small = srpm('bench', { summary: 'a small package for the benchmark' });
  const sums = { size: statSync(small).size, sha1: sha(small, 'sha1'), sha256: sha(small, 'sha256') };
  const f = await farm(dialect);
  for (let i = 0; i < JOBS; i++) writeJob(f.incoming, `job-${String(i).padStart(5, '0')}`, small, sums);
  const r = runPass(f);
  await f.drop();
  if (r.registered !== JOBS)
    throw new Error(`only ${r.registered} of ${JOBS} jobs registered: ${r.problems.join('; ')}`);
  return { jobsPerSecond: JOBS / (r.ms / 1000), ms: r.ms, cpuPerJob: r.cpuMs / JOBS };
}

async function bigJob() {
  // A real SRPM header followed by GIB of incompressible bytes: the validator reads the header,
  // the transfer streams every byte.
  const head = readFileSync(srpm('big', { summary: 'a large package for the benchmark' }));
  const big = join(root, 'big-1.0-1.src.rpm');
  const total = GIB * 1024 ** 3;
  let written = 0;
  const chunk = createHash('sha512').update('seed').digest();
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i += chunk.length) chunk.copy(block, i);
  await pipeline(
    Readable.from(
      (function* () {
        yield head;
        while (written < total) {
          // Vary each block so nothing can deduplicate it.
          block.writeUInt32BE(written / block.length, 0);
          written += block.length;
          yield Buffer.from(block);
        }
      })(),
    ),
    createWriteStream(big),
  );
  const sums = { size: statSync(big).size, sha1: sha(big, 'sha1'), sha256: sha(big, 'sha256') };
  const f = await farm('sqlite');
  const refs: number[] = [];
  const durableRefs: number[] = [];
  const passes: number[] = [];
  const rss: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const copy = join(root, 'ref-copy');
    const t0 = performance.now();
    execFileSync('sh', ['-c', `sha1sum "$1" >/dev/null && cp "$1" "$2" && sha1sum "$2" >/dev/null`, 'ref', big, copy]);
    refs.push(performance.now() - t0);
    rmSync(copy);
    // The same with the copy flushed to disk (sync FILE is an fsync), as the pass's copy is.
    const t1 = performance.now();
    execFileSync('sh', [
      '-c',
      `sha1sum "$1" >/dev/null && cp "$1" "$2" && sync "$2" && sha1sum "$2" >/dev/null`,
      'ref',
      big,
      copy,
    ]);
    durableRefs.push(performance.now() - t1);
    rmSync(copy);
    writeJob(f.incoming, `big-${run}`, big, sums);
    const r = runPass(f);
    if (r.registered !== 1) throw new Error(`the big job was not registered: ${r.problems.join('; ')}`);
    passes.push(r.ms);
    rss.push(r.maxRssKb);
    rmSync(join(f.accepted, `big-${run}`), { recursive: true });
  }
  await f.drop();
  return {
    ref: median(refs),
    pass: median(passes),
    ratio: median(passes.map((p, i) => p / refs[i]!)),
    durableRatio: median(passes.map((p, i) => p / durableRefs[i]!)),
    rssMb: Math.max(...rss) / 1024,
  };
}

// The pass runs the compiled program: build it from the current sources first.
execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' });
try {
  console.log(`PkgForge incoming benchmark (${JOBS} jobs; ${GIB} GiB job, ${RUNS} runs)`);
  for (const dialect of ['sqlite', 'postgresql'] as const) {
    const r = await manyJobs(dialect);
    console.log(
      `1. ${dialect.padEnd(10)} ${JOBS} single-package jobs in ${(r.ms / 1000).toFixed(2)} s: ${r.jobsPerSecond.toFixed(0)} jobs/s (target >= ${dialect === 'sqlite' ? 1000 : 600}); the pass's CPU ${r.cpuPerJob.toFixed(2)} ms per job`,
    );
  }
  const b = await bigJob();
  console.log(
    `2. ${GIB} GiB job: pass ${(b.pass / 1000).toFixed(2)} s, sha1sum+cp+sha1sum ${(b.ref / 1000).toFixed(2)} s, ratio ${b.ratio.toFixed(2)} (target <= 0.9); against the same with the copy fsynced, ${b.durableRatio.toFixed(2)}; peak memory ${b.rssMb.toFixed(0)} MB (target < 100)`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
