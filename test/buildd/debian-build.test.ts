import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { runBuildd, type TaskReport } from '../../src/buildd/daemon.ts';
import { builddSettings } from '../../src/buildd/setup.ts';
import { exportPublicKey, farmSigningKey } from '../../src/buildd/signing-key.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import type { ConfigFile } from '../../src/config/schema.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { silentLog } from '../../src/util/log.ts';
import { aptClient, downloadAndUnpack } from '../helpers/apt.ts';
import { helloSource, sbuildUser, testBuildRoots } from '../helpers/debian.ts';
import { buildDsc, stopAgentAtExit } from '../helpers/dsc.ts';
import { addPlatforms, makeFarm, submitTo, type TestFarm } from '../helpers/farm.ts';

const never = new AbortController().signal;

/**
 * Real Debian source packages built by sbuild in unshare mode from a build root made by
 * `pkgforge buildroot create`, checked by lintian, published with reprepro and installed by apt:
 * GNU hello from Debian's archive, a job whose second package build-depends on its first, and one
 * whose build dependency exists nowhere.
 */
describe('Debian source packages built with sbuild, checked by lintian, published for apt', () => {
  let farm: TestFarm;
  let repos: string;
  let buildroots: string;
  let user: string;
  before(async () => {
    [buildroots, user] = await Promise.all([testBuildRoots(), sbuildUser()]);
    farm = await makeFarm('sqlite');
    repos = join(farm.root, 'repos');
    stopAgentAtExit(join(farm.root, 'gnupg'));
    await addPlatforms(farm, 'deb12/x86_64*');
    await addBuilder(farm.registry.db, 'd1', 'deb12', 'x86_64');
    await addBuilder(farm.registry.db, 'd2', 'deb12', 'x86_64');
  });
  after(async () => farm?.dispose());

  const ctx = (name: string, extra: Partial<ConfigFile> = {}) => ({
    registry: farm.registry,
    name,
    dirs: { accepted: farm.accepted, results: farm.results, tmpdir: join(farm.root, 'tmp') },
    settings: builddSettings(
      loadConfig({
        files: [],
        env: { PKGFORGE_HOME: farm.root, HOME: farm.root },
        overrides: {
          repos,
          buildroots,
          builder: 'sbuild',
          checks: ['lintian'],
          publishers: ['reprepro'],
          sandbox_user: user,
          sandbox_dir: farm.builds,
          ...extra,
        },
      }),
    ),
    log: silentLog,
  });
  async function submit(id: string, files: string[]) {
    await submitTo(farm, id, files);
    const pass = await runIncomingPass(farm.ctx());
    assert.equal(pass.outcomes[0]?.kind, 'registered', JSON.stringify(pass.outcomes));
  }
  const buildOne = async (extra: Partial<ConfigFile> = {}, name = 'd1') => {
    const [report] = await runBuildd(ctx(name, extra), { once: true, stop: never, abort: never });
    assert.ok(report, 'a task was built');
    return report;
  };
  const taskDir = (job: string) => join(farm.results, job, 'deb12-x86_64');
  const attemptDir = (job: string) => join(taskDir(job), 'attempt-1');
  /** Why a build did not go as expected: its reason and the end of its log. */
  const why = (job: string, reason: string | null) => {
    const log = join(attemptDir(job), 'build.log');
    return `${reason}\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-4000) : '(no build log)'}`;
  };

  it('refuses to claim, and says why, while its platform has no build root or its user no subordinate ids', async () => {
    await assert.rejects(buildOne({ buildroots: join(farm.root, 'no-buildroots') }), (err: Error) => {
      assert.match(
        err.message,
        /the platform deb12\/x86_64 has no build root in .*no-buildroots \(make it with `pkgforge buildroot create deb12`\)/,
      );
      return true;
    });
    await assert.rejects(
      buildOne({ sandbox_user: 'nobody' }),
      /the build user 'nobody' has fewer than 65536 subordinate ids in \/etc\/subuid/,
    );
  });

  /**
   * GNU hello, and a job of two packages the second of which build-depends on the first, built at
   * once by two builders of the platform (sbuild takes minutes); the tests below each read theirs.
   */
  let builds: Promise<Map<string, TaskReport>> | null = null;
  const helloAndPair = () =>
    (builds ??= (async () => {
      await submit('hello', [await helloSource()]);
      // pkgf-depa's build looks for the network, which a build never has.
      const probe =
        'if getent hosts deb.debian.org >/dev/null; then echo "probe: network reachable"; else echo "probe: no network"; fi';
      await submit('pair', [
        buildDsc('pkgf-depa', { buildCommand: probe }),
        buildDsc('pkgf-depb', { buildDepends: 'pkgf-depa' }),
      ]);
      const reports = await Promise.all([buildOne({}, 'd1'), buildOne({}, 'd2')]);
      return new Map(reports.map((r) => [r.jobId, r]));
    })());

  it("builds GNU hello from Debian's archive, keeps its .deb, .changes and .buildinfo, and publishes it for apt to install", async () => {
    const version = basename(await helloSource()).replace(/^hello_|\.dsc$/g, '');
    const report = (await helloAndPair()).get('hello')!;
    assert.equal(report.status, 'success', why('hello', report.reason));
    const info = YAML.parse(readFileSync(join(taskDir('hello'), 'buildinfo.yml'), 'utf8'));
    assert.deepEqual(info.phases, [
      'init',
      'build',
      'check',
      'check-lintian',
      'sign',
      'publish',
      'publish-reprepro',
      'end',
    ]);
    const products = readdirSync(attemptDir('hello'));
    for (const f of [
      `hello_${version}_amd64.deb`,
      `hello_${version}_amd64.changes`,
      `hello_${version}_amd64.buildinfo`,
    ])
      assert.ok(products.includes(f), `${f} among ${products.join(', ')}`);
    const log = readFileSync(join(attemptDir('hello'), 'build.log'), 'utf8');
    assert.match(log, /building hello_.*\.dsc with sbuild in .*deb12-amd64\.tar\.zst \(bookworm\) as pkgforge-sbuild/);
    assert.match(log, /^Build Type: any$/m, 'hello (Architecture: any) builds its arch packages only');
    assert.match(log, /^Status: successful$/m);
    assert.match(
      readFileSync(join(attemptDir('hello'), 'check-lintian.log'), 'utf8'),
      /Running lintian on hello_.*\.changes/,
    );
    assert.equal((await getJobDetail(farm.registry.db, 'hello'))?.status, 'success');

    // A real apt, with the farm's key as the only one it trusts for the repository.
    const keyFile = join(farm.root, 'farm.asc');
    writeFileSync(keyFile, await exportPublicKey(await farmSigningKey(join(farm.root, 'gnupg'), null)));
    const client = await aptClient(
      mkdtempSync(join(farm.root, 'client-')),
      `deb [signed-by=${keyFile}] file://${join(repos, 'devel', 'deb')} deb12 main`,
    );
    assert.doesNotMatch(client.update, /^(W|E):/m, client.update);
    const unpacked = await downloadAndUnpack(client, 'hello');
    assert.equal(execFileSync(join(unpacked, 'usr', 'bin', 'hello'), { encoding: 'utf8' }).trim(), 'Hello, world!');
  });

  it("builds a job's packages in order, the second against the first, and a later job against what the bucket published", async () => {
    const report = (await helloAndPair()).get('pair')!;
    assert.equal(report.status, 'success', why('pair', report.reason));
    const log = readFileSync(join(attemptDir('pair'), 'build.log'), 'utf8');
    assert.match(log, /Unpacking pkgf-depa \(1\.0-1\)/, 'pkgf-depa was installed to build pkgf-depb');
    assert.match(log, /^probe: no network$/m);
    assert.match(log, /^Get:\d+ http:\/\/\S+ bookworm InRelease/m, 'apt reached the mirror before the build');
    assert.ok(existsSync(join(repos, 'devel', 'deb', 'pool', 'main', 'p', 'pkgf-depb', 'pkgf-depb_1.0-1_all.deb')));
    // lintian's errors are reported, and fail the task only when checking is strict.
    assert.match(
      readFileSync(join(attemptDir('pair'), 'check-lintian.log'), 'utf8'),
      /^E: pkgf-depa: no-copyright-file$/m,
    );
    assert.match(log, /Package 'pkgf-depa_1\.0-1_amd64\.changes' failed the lintian check/);
    // sbuild removed each package's unpacked build root itself, before the next package's.
    assert.doesNotMatch(log, /cannot remove .*tmp\.sbuild/);

    // pkgf-depb comes from the bucket's repository; the other dependency exists nowhere.
    await submit('unsat', [buildDsc('pkgf-depc', { buildDepends: 'pkgf-depb, libpkgforge-nowhere-dev' })]);
    const failed = await buildOne();
    assert.equal(failed.status, 'fail');
    assert.match(
      failed.reason ?? '',
      /^Failed to build pkgf-depc_1\.0-1\.dsc: missing build dependency libpkgforge-nowhere-dev but it is not installable$/,
    );
    const job = (await getJobDetail(farm.registry.db, 'unsat'))!;
    assert.equal(job.status, 'fail');
    assert.match(job.tasks[0]?.reason ?? '', /missing build dependency libpkgforge-nowhere-dev/);
    assert.match(readFileSync(join(attemptDir('unsat'), 'build.log'), 'utf8'), /^Fail-Stage: install-deps$/m);
  });
});
