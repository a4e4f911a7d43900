import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { farmSide, type FarmSide } from '../../src/buildd/farm-side.ts';
import { builddSettings } from '../../src/buildd/setup.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import { RECEIVED_DIR, type RemoteReport } from '../../src/core/remote-build.ts';
import { attemptPath } from '../../src/core/results-layout.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { builderIdentity, claimNextTask, type Claim } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { silentLog } from '../../src/util/log.ts';
import { addPlatforms, makeFarm, submitTo, type TestFarm } from '../helpers/farm.ts';
import { digest } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { buildDeb, buildDsc } from '../helpers/dsc.ts';
import { buildRpm, specFor } from '../helpers/srpm.ts';

/** What a Debian build of `dsc` leaves (`dpkg-buildpackage -b`, as sbuild runs it): its .deb, .buildinfo and .changes. */
function debianBuild(dsc: string): string[] {
  const top = mkdtempSync(join(tmpdir(), 'pkgforge-debbuild-'));
  execFileSync('dpkg-source', ['-x', dsc, join(top, 'src')], { stdio: 'pipe' });
  execFileSync('dpkg-buildpackage', ['-b', '-uc', '-us'], { cwd: join(top, 'src'), stdio: 'pipe' });
  return readdirSync(top)
    .filter((f) => /\.(deb|buildinfo|changes)$/.test(f))
    .map((f) => join(top, f));
}

for (const dialect of DIALECTS) {
  describe(`the farm's side of a remote build on ${dialect}`, () => {
    let farm: TestFarm;
    let side: FarmSide;
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*', 'el9/aarch64', 'deb12/x86_64');
      await addBuilder(farm.registry.db, 'rdeb', 'deb12', 'x86_64');
      await addBuilder(farm.registry.db, 'rb', 'el9', 'x86_64');
      await addBuilder(farm.registry.db, 'rbarm', 'el9', 'aarch64');
      const config = loadConfig({
        files: [],
        env: { PKGFORGE_HOME: farm.root, HOME: farm.root },
        overrides: { repos: join(farm.root, 'repos'), sandbox_dir: farm.builds, checks: ['rpmlint'] },
      });
      side = farmSide({
        registry: farm.registry,
        dirs: { accepted: farm.accepted, results: farm.results, tmpdir: join(farm.root, 'tmp'), repos: config.repos },
        settings: builddSettings(config),
        log: silentLog,
        limits: () => config.buildd.limits,
      });
    });
    after(async () => {
      side.close();
      await farm.dispose();
    });

    /** A job submitted and claimed by the remote builder `rb`. */
    async function claimed(id: string, name: string, builder = 'rb', archs = ['x86_64']): Promise<Claim> {
      await submitTo(farm, id, [buildRpm(specFor(name))], { platforms: ['el9'], archs });
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      const me = (await builderIdentity(farm.registry.db, builder))!;
      return (await claimNextTask(farm.registry, me, 'remote[1]', 60_000))!;
    }
    /** What a builder's uploads leave: the files in the attempt's `.received/`. */
    function received(claim: Claim, files: string[]): string {
      const dir = join(farm.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt), RECEIVED_DIR);
      mkdirSync(dir, { recursive: true });
      for (const f of files) copyFileSync(f, join(dir, basename(f)));
      return dir;
    }
    const reportOf = (files: string[], extra: Partial<RemoteReport> = {}): RemoteReport => ({
      status: 'success',
      reason: null,
      hostname: 'far.example.org',
      starttime: 1_700_000_000,
      phases: ['init', 'build'],
      success: ['x.src.rpm'],
      failures: [],
      products: files.map((f) => ({
        name: basename(f),
        size: readFileSync(f).length,
        sha256: digest(f, 'sha256'),
      })),
      ...extra,
    });
    const binary = (name: string) => buildRpm(specFor(name), 'binary');
    const repoFiles = () =>
      readdirSync(join(farm.root, 'repos', 'devel', 'el9', 'x86_64')).filter((f) => f.endsWith('.rpm'));

    it('checks, publishes and records what the builder uploaded, with its host in buildinfo.yml', async () => {
      const claim = await claimed('rok', 'rok');
      const rpm = binary('rok');
      received(claim, [rpm]);
      const answer = await side.complete(claim, reportOf([rpm]));
      assert.deepEqual(answer, { status: 'success', reason: null });
      assert.equal((await getJobDetail(farm.registry.db, 'rok'))!.status, 'success');
      assert.ok(repoFiles().includes('rok-1.0-1.noarch.rpm'));
      const attemptDir = join(farm.results, attemptPath('rok', 'el9', 'x86_64', 1));
      const info = readFileSync(join(attemptDir, 'buildinfo.yml'), 'utf8');
      assert.match(info, /hostname: far\.example\.org/);
      assert.match(info, /- check-rpmlint/);
      assert.ok(existsSync(join(attemptDir, 'check-rpmlint.log')), 'the farm ran its own check');
      // What was received is kept in the attempt's directory, once.
      assert.equal(existsSync(join(attemptDir, RECEIVED_DIR)), false);
      assert.ok(existsSync(join(attemptDir, 'rok-1.0-1.noarch.rpm')));
    });

    it('fails the task when a reported product was not uploaded, naming it', async () => {
      const claim = await claimed('rmissing', 'rmissing');
      const answer = await side.complete(claim, reportOf([binary('rmissing')]));
      assert.equal(answer !== 'unrecorded' && answer.status, 'fail');
      assert.match(
        (answer as { reason: string }).reason,
        /reported the product rmissing-1\.0-1\.noarch\.rpm, but did not upload it/,
      );
      assert.ok(!repoFiles().includes('rmissing-1.0-1.noarch.rpm'));
    });

    it('fails the task when the uploaded file is not the one reported (size and SHA-256 named), and publishes nothing', async () => {
      const claim = await claimed('rswap', 'rswap');
      const rpm = binary('rswap');
      const dir = received(claim, [rpm]);
      // Another valid package under the reported name: what the farm checks is the report's checksum.
      writeFileSync(join(dir, basename(rpm)), readFileSync(binary('rswapother')));
      const answer = await side.complete(claim, reportOf([rpm]));
      assert.equal(answer !== 'unrecorded' && answer.status, 'fail');
      assert.match(
        (answer as { reason: string }).reason,
        /Refused the product rswap-1\.0-1\.noarch\.rpm: the file uploaded .* is not the one reported/,
      );
      assert.ok(!repoFiles().includes('rswap-1.0-1.noarch.rpm'));
    });

    it("refuses a package of another job's source, or of another architecture", async () => {
      const claim = await claimed('rother', 'rother');
      const foreign = binary('someoneelse');
      received(claim, [foreign]);
      const answer = await side.complete(claim, reportOf([foreign]));
      assert.equal(answer !== 'unrecorded' && answer.status, 'fail');
      assert.match(
        (answer as { reason: string }).reason,
        /Refused the product someoneelse-1\.0-1\.noarch\.rpm: it was built from someoneelse-1\.0-1\.src\.rpm, not from one of job rother's/,
      );
      const arm = await claimed('rarch', 'rarch', 'rbarm', ['aarch64']);
      const x86 = buildRpm(specFor('rarch').replace('BuildArch: noarch', 'BuildArch: x86_64'), 'binary');
      received(arm, [x86]);
      const wrong = await side.complete(arm, reportOf([x86]));
      assert.match((wrong as { reason: string }).reason, /it is for x86_64, and the task builds for aarch64/);
      assert.ok(!repoFiles().some((f) => f.startsWith('someoneelse') || f.startsWith('rarch')));
    });

    it("fails a task whose 'product' is not a package, by the same checks as a local build's", async () => {
      const claim = await claimed('rfake', 'rfake');
      const fake = join(farm.root, 'rfake-1.0-1.noarch.rpm');
      writeFileSync(fake, 'not an rpm at all\n');
      received(claim, [fake]);
      const answer = await side.complete(claim, reportOf([fake]));
      assert.equal(answer !== 'unrecorded' && answer.status, 'fail');
      assert.match(
        (answer as { reason: string }).reason,
        /Refused the product rfake-1\.0-1\.noarch\.rpm: it is not a valid RPM/,
      );
    });

    it('refuses a success whose products are not what a build of the job makes: only its source, twice the same, another family', async () => {
      const cases: [string, (claim: Claim) => RemoteReport, RegExp][] = [
        ['ronly', () => reportOf([buildRpm(specFor('ronly'))]), /reported success, but no packages built/],
        [
          'rtwice',
          (claim) => {
            const rpm = binary('rtwice');
            received(claim, [rpm]);
            return reportOf([rpm, rpm]);
          },
          /its products are not all different/,
        ],
        [
          'rdeb',
          (claim) => {
            const deb = join(farm.root, 'rdeb_1.0_all.deb');
            writeFileSync(deb, '!<arch>\ndebian-binary   ');
            received(claim, [deb, binary('rdeb')]);
            return reportOf([binary('rdeb'), deb]);
          },
          /rdeb_1\.0_all\.deb is not what a build of rpm packages makes/,
        ],
      ];
      for (const [id, report, reason] of cases) {
        const claim = await claimed(id, id);
        const answer = await side.complete(claim, report(claim));
        assert.equal(answer !== 'unrecorded' && answer.status, 'fail', id);
        assert.match((answer as { reason: string }).reason, reason);
      }
    });

    it('takes a Debian build as dpkg-buildpackage leaves it (.deb and .buildinfo listed in the .changes), and refuses a .deb the .changes does not list', async () => {
      const dsc = buildDsc('rdsc');
      const products = debianBuild(dsc);
      await submitTo(farm, 'rdsc', [dsc], { platforms: ['deb12'], archs: ['x86_64'] });
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      const me = (await builderIdentity(farm.registry.db, 'rdeb'))!;
      const claim = (await claimNextTask(farm.registry, me, 'remote[1]', 60_000))!;
      received(claim, products);
      const answer = await side.complete(claim, reportOf(products));
      assert.deepEqual(answer, { status: 'success', reason: null });
      const info = readFileSync(join(farm.results, attemptPath('rdsc', 'deb12', 'x86_64', 1), 'buildinfo.yml'), 'utf8');
      for (const p of products) assert.match(info, new RegExp(`- ${basename(p).replaceAll('.', '\\.')}`));

      const extra = buildDeb('rstowaway', '6.6.6-1');
      await submitTo(farm, 'rdsc2', [buildDsc('rdsc2')], { platforms: ['deb12'], archs: ['x86_64'] });
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      const second = (await claimNextTask(farm.registry, me, 'remote[1]', 60_000))!;
      const built2 = debianBuild(buildDsc('rdsc2'));
      received(second, [...built2, extra]);
      const refused = await side.complete(second, reportOf([...built2, extra]));
      assert.equal(refused !== 'unrecorded' && refused.status, 'fail');
      assert.match(
        (refused as { reason: string }).reason,
        /Refused the product rstowaway_6\.6\.6-1_all\.deb: no \.changes of the build lists it/,
      );
    });

    it("records a builder's failure with its reason and the log it sent", async () => {
      const claim = await claimed('rfail', 'rfail');
      const dir = join(farm.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'build.log'), 'error: the build went wrong\n');
      const report = reportOf([], { status: 'fail', reason: 'rfail-1.0-1.src.rpm: rpmbuild failed with exit code 1' });
      assert.deepEqual(await side.complete(claim, report), {
        status: 'fail',
        reason: 'rfail-1.0-1.src.rpm: rpmbuild failed with exit code 1',
      });
      const job = (await getJobDetail(farm.registry.db, 'rfail'))!;
      assert.equal(job.tasks[0]!.reason, 'rfail-1.0-1.src.rpm: rpmbuild failed with exit code 1');
      assert.match(
        readFileSync(join(dir, 'build.log'), 'utf8'),
        /the build went wrong[\s\S]*the build on far\.example\.org failed/,
      );
    });
  });
}
