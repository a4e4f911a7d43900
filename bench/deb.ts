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
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildRootFile } from '../src/buildd/buildroot.ts';
import { findJob } from '../src/registry/jobs.ts';
import { openRegistry } from '../src/registry/registry.ts';
import { lookupUser } from '../src/util/users.ts';
import { helloSource, sbuildUser, testBuildRoots } from '../test/helpers/debian.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const ROOT = join(import.meta.dirname, '..');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const [buildroots, userName, dsc] = await Promise.all([testBuildRoots(), sbuildUser(), helloSource()]);
const user = (await lookupUser(userName))!;
const tarball = buildRootFile(buildroots, 'deb12', 'x86_64');
execFileSync(process.execPath, ['scripts/build.mjs'], { cwd: ROOT, stdio: 'inherit' });

/** The reference: sbuild as a user would run it by hand, in a directory of that user's. */
function bareSbuild(): number {
  const dir = mkdtempSync('/var/tmp/pkgforge-bench-sbuild-');
  chmodSync(dir, 0o755);
  chownSync(dir, user.uid, user.gid);
  const t0 = performance.now();
  execFileSync(
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
    { cwd: dir, stdio: 'ignore' },
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
const refs: number[] = [];
const farm: number[] = [];
try {
  for (let run = 0; run < RUNS; run++) {
    refs.push(bareSbuild());
    const id = `deb-${run}`;
    const t0 = performance.now();
    execFileSync(
      process.execPath,
      [join(ROOT, 'bin', 'pkgforge.js'), 'submit', '--bucket', `b${run}`, '--id', id, dsc],
      {
        env,
        stdio: 'ignore',
      },
    );
    for (;;) {
      const job = await findJob(registry.db, id);
      if (job?.status === 'success') break;
      if (job && ['fail', 'invalid', 'partial fail', 'registered'].includes(job.status) && job.reason)
        throw new Error(`job ${id} ended ${job.status}: ${job.reason}`);
      await sleep(20);
    }
    farm.push(performance.now() - t0);
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
