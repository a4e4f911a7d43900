/**
 * npm run bench:deb — from `pkgforge submit` of GNU hello's `.dsc` to a `success` job on the
 * embedded default (`pkgforge serve` with `builder: sbuild`, lintian and reprepro), divided by a
 * bare `sbuild --chroot-mode=unshare` of the same `.dsc` from the same build root, as the same user,
 * measured in the same run and interleaved with it. Target: at most 1.1. BENCH_RUNS (default 2)
 * changes the number of pairs. Needs what the Debian build tests need (test/helpers/debian.ts): the
 * user pkgforge-sbuild with subordinate ids; the build root and hello's source are made or reused
 * from the tests' cache.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildRootFile } from '../src/buildd/buildroot.ts';
import { findJob } from '../src/registry/jobs.ts';
import { openRegistry } from '../src/registry/registry.ts';
import { lookupUser } from '../src/util/users.ts';
import { helloSource, sbuildUser, testBuildRoots } from '../test/helpers/debian.ts';
import { buildDsc } from '../test/helpers/dsc.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const ROOT = join(import.meta.dirname, '..');
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const [buildroots, userName, dsc] = await Promise.all([testBuildRoots(), sbuildUser(), helloSource()]);
const user = (await lookupUser(userName))!;
const tarball = buildRootFile(buildroots, 'deb12', 'x86_64');
execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });

/** The reference: sbuild as a user would run it by hand, in a directory of that user's. */
/** sbuild's own measure of a build (its summary's Package-Time, seconds), from its output. */
const packageTime = (output: string) => Number(output.match(/^Package-Time: (\d+)$/m)?.[1] ?? NaN);
let bareSays = '';

function bareSbuild(): number {
  const dir = mkdtempSync('/var/tmp/pkgforge-bench-sbuild-');
  chmodSync(dir, 0o755);
  chownSync(dir, user.uid, user.gid);
  const t0 = performance.now();
  bareSays = execFileSync(
    'setpriv',
    [
      `--reuid=${user.uid}`,
      `--regid=${user.gid}`,
      '--clear-groups',
      'env',
      '-i',
      'PATH=/usr/bin:/bin:/usr/sbin:/sbin',
      `HOME=${dir}`,
      `USER=${user.name}`,
      'LANG=C.UTF-8',
      'sbuild',
      '--chroot-mode=unshare',
      `--chroot=${tarball}`,
      '--dist=bookworm',
      '--no-run-lintian',
      '--nolog',
      `--build-dir=${dir}`,
      dsc,
    ],
    { cwd: dir, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  const ms = performance.now() - t0;
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const home = mkdtempSync('/var/tmp/pkgforge-bench-deb-');
chmodSync(home, 0o755);
mkdirSync(join(home, 'etc'));
writeFileSync(
  join(home, 'etc', 'pkgforge.yml'),
  [
    'platform: deb12',
    'builder: sbuild',
    'checks: [lintian]',
    'publishers: [reprepro]',
    `sandbox_user: ${user.name}`,
    `buildroots: ${buildroots}`,
    'poll: 1',
    'timeout: 3600',
    '',
  ].join('\n'),
);
const env = { ...process.env, PKGFORGE_HOME: home };
const serve = spawn(process.execPath, [join(ROOT, 'bin', 'pkgforge.js'), 'serve', '--no-web'], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
let out = '';
serve.stdout!.on('data', (d: Buffer) => (out += d.toString()));
const exited = once(serve, 'exit');
while (!/Submit a job|ready/i.test(out)) {
  if (serve.exitCode !== null) throw new Error(`pkgforge serve exited:\n${out}`);
  await sleep(50);
}
const registry = await openRegistry({ type: 'sqlite', path: join(home, 'registry.db') });
/** Submits `file` as job `id` into its own bucket and waits for its success; returns the milliseconds it took. */
async function throughFarm(id: string, file: string): Promise<number> {
  const t0 = performance.now();
  execFileSync(process.execPath, [join(ROOT, 'bin', 'pkgforge.js'), 'submit', '--bucket', id, '--id', id, file], {
    env,
    stdio: 'ignore',
  });
  for (;;) {
    const job = await findJob(registry.db, id);
    if (job?.status === 'success') return performance.now() - t0;
    if (job && ['fail', 'invalid', 'partial fail', 'registered'].includes(job.status) && job.reason)
      throw new Error(`job ${id} ended ${job.status}: ${job.reason}`);
    await sleep(20);
  }
}
const refs: number[] = [];
const farm: number[] = [];
try {
  // What a farm does once, not per build (its signing key, the sandbox's probe, lintian's first
  // start), on a tiny package first.
  const warm = await throughFarm('warm-up', buildDsc('pkgf-warmup'));
  console.log(`warm-up (a tiny package, the farm's key made): ${(warm / 1000).toFixed(1)} s`);
  for (let run = 0; run < RUNS; run++) {
    refs.push(bareSbuild());
    const bareTime = packageTime(bareSays);
    farm.push(await throughFarm(`deb-${run}`, dsc));
    // Where the farm's extra time goes: sbuild itself (its Package-Time), or the farm around it.
    const log = readFileSync(join(home, 'results', `deb-${run}`, 'deb12-x86_64', 'attempt-1', 'build.log'), 'utf8');
    const stamps = [...log.matchAll(/^\[([^\]]+)\] pkgforge: (.*)$/gm)].map((m) => ({
      at: Date.parse(m[1]!),
      what: m[2]!,
    }));
    const at = (re: RegExp) => stamps.find((x) => re.test(x.what))?.at ?? NaN;
    const started = at(/^building job/);
    const sbuildFrom = at(/with sbuild in/);
    const built = at(/: built$/);
    const published = at(/^published /);
    console.log(
      `  farm: sbuild's Package-Time ${packageTime(log)} s (bare ${bareTime} s); task start → sbuild ${((sbuildFrom - started) / 1000).toFixed(1)} s; sbuild → built ${((built - sbuildFrom) / 1000).toFixed(1)} s; built → published (lintian, reprepro) ${((published - built) / 1000).toFixed(1)} s`,
    );
    console.log(
      `pair ${run + 1}: bare sbuild ${(refs.at(-1)! / 1000).toFixed(1)} s, farm ${(farm.at(-1)! / 1000).toFixed(1)} s`,
    );
  }
} finally {
  await registry.close();
  serve.kill('SIGTERM');
  await exited;
  rmSync(home, { recursive: true, force: true });
}
const ratios = farm.map((f, i) => f / refs[i]!);
console.log(
  `GNU hello, submit -> success median ${(median(farm) / 1000).toFixed(1)} s; bare sbuild median ${(median(refs) / 1000).toFixed(1)} s; ratio median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)}; target <= 1.1; ${RUNS} interleaved pairs, pkgforge serve on SQLite, lintian and reprepro included)`,
);
