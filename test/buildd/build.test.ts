import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { runBuildd, runClaim } from '../../src/buildd/daemon.ts';
import { builddSettings } from '../../src/buildd/setup.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import type { ConfigFile } from '../../src/config/schema.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import {
  anyLeaseExpired,
  builderIdentity,
  claimNextTask,
  finishAttempt,
  listAttempts,
  requeueAbandoned,
} from '../../src/registry/attempts.ts';
import { addBuilder, findBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { cancelTasks } from '../../src/registry/tasks.ts';
import { silentLog } from '../../src/util/log.ts';
import {
  addPlatforms,
  eventually,
  farmEnv,
  makeFarm,
  PKGFORGE_ARGS,
  pkgforge,
  type TestFarm,
  submitTo,
} from '../helpers/farm.ts';
import { startSmtp } from '../helpers/smtp.ts';
import { farmSigningKey } from '../../src/buildd/signing-key.ts';
import { stopAgentAtExit } from '../helpers/dsc.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { buildRpm, specFor, srpm } from '../helpers/srpm.ts';

const never = new AbortController().signal;
const slowSpec = (name: string) => specFor(name).replace('%install', '%build\nsleep 60\n%install');
/** Whether a build log exists and has the given text yet. */
const logSays = (log: string, text: string) => existsSync(log) && readFileSync(log, 'utf8').includes(text);

// The whole path through the registry on both dialects; what does not touch it (timeouts, mock,
// signing) once, on SQLite.
for (const dialect of DIALECTS)
  describe(`build daemons build real packages (${dialect} registry, rpmbuild, rpmlint, createrepo_c, SMTP)`, () => {
    let farm: TestFarm;
    let smtp: Awaited<ReturnType<typeof startSmtp>>;
    let repos: string;
    before(async () => {
      farm = await makeFarm(dialect);
      smtp = await startSmtp();
      repos = join(farm.root, 'repos');
      await addPlatforms(farm, 'el9/x86_64*');
      await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
      await addBuilder(farm.registry.db, 'b2', 'el9', 'x86_64');
    });
    after(async () => {
      await smtp.close();
      await farm.dispose();
    });

    const settings = (extra: Partial<ConfigFile> = {}) =>
      builddSettings(
        loadConfig({
          files: [],
          env: { PKGFORGE_HOME: farm.root, HOME: farm.root },
          overrides: {
            repos,
            sandbox_dir: farm.builds,
            checks: ['rpmlint'],
            reports: [{ email: { host: '127.0.0.1', port: smtp.port, from: 'farm@example.org' } }],
            lease_renewal: 0.2,
            lease_expiry: 2,
            ...extra,
          },
        }),
      );
    const ctx = (name = 'b1', extra: Partial<ConfigFile> = {}) => ({
      registry: farm.registry,
      name,
      dirs: { accepted: farm.accepted, results: farm.results, tmpdir: join(farm.root, 'tmp') },
      settings: settings(extra),
      log: silentLog,
    });
    async function submit(id: string, files: string[], report: string[] = []) {
      await submitTo(farm, id, files, { report });
      const pass = await runIncomingPass(farm.ctx());
      assert.equal(pass.outcomes[0]?.kind, 'registered', JSON.stringify(pass.outcomes));
    }
    const buildOne = (name = 'b1', extra: Partial<ConfigFile> = {}) =>
      runBuildd(ctx(name, extra), { once: true, stop: never, abort: never });

    it('builds, checks and publishes a package into a yum repository, and mails a report', async () => {
      await submit('ok', [srpm('hello')], ['dev@example.org', 'lead@example.org']);
      const [report] = await buildOne();
      assert.equal(report?.status, 'success', report?.reason ?? '');
      const job = (await getJobDetail(farm.registry.db, 'ok'))!;
      assert.equal(job.status, 'success');
      const repo = join(repos, 'devel', 'el9', 'x86_64');
      assert.ok(existsSync(join(repo, 'hello-1.0-1.noarch.rpm')));
      const repomd = readFileSync(join(repo, 'repodata', 'repomd.xml'), 'utf8');
      const primaryHref = repomd.match(/href="(repodata\/[^"]*primary\.xml\.gz)"/)![1]!;
      assert.match(gunzipSync(readFileSync(join(repo, primaryHref))).toString(), /<name>hello<\/name>/);
      const taskDir = join(farm.results, 'ok', 'el9-x86_64');
      const info = YAML.parse(readFileSync(join(taskDir, 'buildinfo.yml'), 'utf8'));
      assert.deepEqual(info.phases, [
        'init',
        'build',
        'check',
        'check-rpmlint',
        'sign',
        'publish',
        'publish-createrepo',
        'end',
      ]);
      assert.equal(info.completed, 1);
      assert.deepEqual(info.products, ['hello-1.0-1.noarch.rpm']);
      assert.ok(existsSync(join(taskDir, 'attempt-1', 'check-rpmlint.log')));
      assert.match(readFileSync(join(taskDir, 'attempt-1', 'build.log'), 'utf8'), /hello-1\.0-1\.src\.rpm: built/);
      await smtp.waitFor(1);
      const mail = smtp.mails[0]!;
      assert.deepEqual(mail.to.sort(), ['dev@example.org', 'lead@example.org']);
      assert.equal(mail.header('X-PkgForge-Status'), 'success');
      assert.equal(mail.header('X-PkgForge-Builder'), 'b1');
      assert.equal(mail.header('X-PkgForge-ID'), 'ok');
      assert.match(mail.raw, /was built and published for el9\/x86_64/);
    });

    it('builds a job whose first package needs the second, with the retry policy', async () => {
      await submit('order-retry', [srpm('world', { buildRequires: ['hello'] }), srpm('hello')]);
      const [report] = await buildOne();
      assert.equal(report?.status, 'success', report?.reason ?? '');
      const log = readFileSync(join(farm.results, 'order-retry', 'el9-x86_64', 'attempt-1', 'build.log'), 'utf8');
      assert.match(
        log,
        /world-1\.0-1\.src\.rpm: cannot build yet, missing build dependencies: hello \(built later in this job\)/,
      );
      assert.match(log, /retrying world-1\.0-1\.src\.rpm/);
    });

    it('fails the same job with the immediate policy', async () => {
      await submit('order-immediate', [srpm('world', { buildRequires: ['hello'] }), srpm('hello')]);
      const [report] = await buildOne('b1', { error_policy: 'immediate' });
      assert.equal(report?.status, 'fail');
      const job = (await getJobDetail(farm.registry.db, 'order-immediate'))!;
      assert.equal(job.status, 'fail');
      assert.equal(
        job.tasks[0]!.reason,
        'world-1.0-1.src.rpm: missing build dependencies: hello (built later in this job) (error policy: immediate)',
      );
    });

    it('fails a package that does not build, keeping the reason and the log', async () => {
      const mailsBefore = smtp.mails.length;
      await submit(
        'broken',
        [
          buildRpm(
            specFor('broken').replace('%install', '%build\necho this build breaks on purpose; exit 1\n%install'),
          ),
        ],
        ['dev@example.org'],
      );
      const [report] = await buildOne();
      assert.equal(report?.status, 'fail');
      const job = (await getJobDetail(farm.registry.db, 'broken'))!;
      // The cause, as the build said it, for the task and summed up for the job.
      assert.equal(job.tasks[0]!.reason, 'broken-1.0-1.src.rpm: this build breaks on purpose (in %build)');
      assert.equal(
        job.reason,
        'the task failed: el9/x86_64: broken-1.0-1.src.rpm: this build breaks on purpose (in %build)',
      );
      const listed = await pkgforge(['jobs'], farmEnv(farm));
      assert.match(
        listed.stdout,
        /^broken\s+fail\s.*the task failed: el9\/x86_64: broken-1\.0-1\.src\.rpm: this build breaks/m,
      );
      const log = readFileSync(join(farm.results, 'broken', 'el9-x86_64', 'attempt-1', 'build.log'), 'utf8');
      assert.match(log, /this build breaks on purpose/);
      assert.match(log, /Giving up at phase: 'build'/);
      // The failure is reported too, with its reason.
      await smtp.waitFor(mailsBefore + 1);
      const mail = smtp.mails[mailsBefore]!;
      assert.equal(mail.header('X-PkgForge-ID'), 'broken');
      assert.equal(mail.header('X-PkgForge-Status'), 'fail');
      assert.match(mail.raw, /Your job broken failed on el9\/x86_64/);
    });

    it('fails a build that calls a tool the host lacks, naming the tool and the stage', async () => {
      await submit('notool', [
        buildRpm(specFor('notool').replace('%install', '%build\nmakeinfo-pkgforge-absent --version\n%install')),
      ]);
      const [report] = await buildOne();
      assert.equal(report?.status, 'fail');
      assert.equal(report!.reason, 'notool-1.0-1.src.rpm: makeinfo-pkgforge-absent: command not found (in %build)');
      const job = (await getJobDetail(farm.registry.db, 'notool'))!;
      assert.match(
        job.reason!,
        /^the task failed: el9\/x86_64: notool-1\.0-1\.src\.rpm: makeinfo-pkgforge-absent: command not found/,
      );
    });

    if (dialect === 'sqlite')
      it('kills a build that exceeds its timeout', async () => {
        await submit('slow', [buildRpm(slowSpec('slow'))]);
        const started = Date.now();
        const [report] = await buildOne('b1', { timeout: 1 });
        // Left alone, the build sleeps 60 s; well under that (rpmbuild and the checks take a few seconds) means it was killed.
        assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
        assert.equal(report?.status, 'fail');
        assert.match(report!.reason!, /killed after the build timeout of 1 s/);
      });

    it('cancels a waiting task at once and a running build within seconds', async () => {
      await submit('cancel-waiting', [srpm('hello')]);
      assert.equal((await cancelTasks(farm.registry, 'cancel-waiting')).length, 1);
      assert.equal((await getJobDetail(farm.registry.db, 'cancel-waiting'))!.status, 'cancelled');

      await submit('cancel-running', [buildRpm(slowSpec('slowcancel'))]);
      const me = (await builderIdentity(farm.registry.db, 'b1'))!;
      const claim = (await claimNextTask(farm.registry, me, 'h', 2000))!;
      assert.equal(claim.jobId, 'cancel-running');
      // Default lease settings (renewal every 30 s): the cancel must still stop the build within 5 s.
      const building = runClaim(ctx('b1', { lease_renewal: 30, lease_expiry: 120 }), claim, {
        stop: never,
        abort: never,
      });
      // Cancel once the build is under way (its log exists).
      const log = join(farm.results, 'cancel-running', 'el9-x86_64', 'attempt-1', 'build.log');
      await eventually('the build of slowcancel to start', () => logSays(log, 'building slowcancel'), 60_000, 50);
      const cancelledAt = Date.now();
      await cancelTasks(farm.registry, 'cancel-running');
      const report = await building;
      assert.ok(Date.now() - cancelledAt < 5000, `stopped after ${Date.now() - cancelledAt} ms`);
      assert.equal(report.status, 'cancelled');
      const job = (await getJobDetail(farm.registry.db, 'cancel-running'))!;
      assert.equal(job.tasks[0]!.status, 'cancelled');
    });

    it("after a daemon is killed with SIGKILL mid-build, another completes the task and the dead one's result is refused", async () => {
      await submit('killed', [buildRpm(slowSpec('killme').replace('sleep 60', 'sleep 1'))]);
      const env = {
        ...process.env,
        ...farmEnv(farm, { PKGFORGE_REPOS: repos, PKGFORGE_LEASE_RENEWAL: '0.2', PKGFORGE_LEASE_EXPIRY: '1' }),
      };
      const child = spawn(process.execPath, [...PKGFORGE_ARGS, 'buildd', '--name', 'b2'], { env, stdio: 'ignore' });
      const log = join(farm.results, 'killed', 'el9-x86_64', 'attempt-1', 'build.log');
      await eventually('the build of killme to start', () => logSays(log, 'building killme'), 60_000, 50);
      child.kill('SIGKILL');
      await once(child, 'exit');
      const task = (await getJobDetail(farm.registry.db, 'killed'))!.tasks[0]!;
      assert.equal(task.status, 'building');
      // The dead builder's claim, as it would report it late.
      const deadClaim = {
        taskId: task.id,
        attempt: 1,
        jobRowId: 0,
        jobId: 'killed',
        bucket: 'devel',
        platform: 'el9',
        arch: 'x86_64',
        builderId: (await findBuilder(farm.registry.db, 'b2'))!.id,
        builderName: 'b2',
        acceptedAttempt: null,
      };
      // The dead builder's lease (1 s) must run out before b1 may take the task over.
      await eventually("the dead builder's lease to run out", () => anyLeaseExpired(farm.registry), 10_000, 50);
      const [report] = await buildOne('b1');
      assert.equal(report?.jobId, 'killed');
      assert.equal(report?.attempt, 2);
      assert.equal(report?.status, 'success', report?.reason ?? '');
      assert.equal(
        await finishAttempt(
          farm.registry,
          {
            ...deadClaim,
            jobRowId: (
              await farm.registry.db
                .selectFrom('jobs')
                .select('id')
                .where('uuid', '=', 'killed')
                .executeTakeFirstOrThrow()
            ).id,
          },
          'fail',
          'late',
          null,
        ),
        false,
      );
      const attempts = await listAttempts(farm.registry.db, task.id);
      assert.deepEqual(
        attempts.map((a) => [a.number, a.builder, a.outcome]),
        [
          [1, 'b2', 'lease expired'],
          [2, 'b1', 'success'],
        ],
      );
      assert.deepEqual(
        readdirSync(join(farm.results, 'killed', 'el9-x86_64'))
          .filter((n) => n.startsWith('attempt-'))
          .sort(),
        ['attempt-1', 'attempt-2'],
      );
      assert.equal(
        YAML.parse(readFileSync(join(farm.results, 'killed', 'el9-x86_64', 'buildinfo.yml'), 'utf8')).attempt,
        2,
      );
      assert.deepEqual(await requeueAbandoned(farm.registry), []);
    });

    if (dialect === 'sqlite')
      it('builds with mock in the <platform>-<bucket>-<arch> root, giving later packages the earlier ones through a local repository', async () => {
        // No chroot can be set up offline, so a stand-in `mock` on PATH records how it is called and
        // builds with rpmbuild into the result directory, as mock would.
        const bin = join(farm.root, 'fake-bin');
        const calls = join(farm.root, 'mock-calls.log');
        mkdirSync(bin, { recursive: true });
        writeFileSync(
          join(bin, 'mock'),
          `#!/bin/sh\nroot=""; result=""; repo=""; srpm=""\nwhile [ $# -gt 0 ]; do case "$1" in --root) root=$2; shift;; --resultdir) result=$2; shift;; --addrepo) repo=$2; shift;; --rpmbuild_timeout) shift;; --rebuild) ;; *) srpm=$1;; esac; shift; done\n` +
            `echo "root=$root srpm=$(basename $srpm) repo-has=$(ls \${repo#file://} | grep -c '\\.rpm$')" >> ${calls}\n` +
            `top=$(mktemp -d); rpmbuild --rebuild --nodeps --quiet --define "_topdir $top" "$srpm" || exit 1; cp $top/RPMS/*/*.rpm "$result"/\n`,
        );
        chmodSync(join(bin, 'mock'), 0o755);
        const path = process.env.PATH;
        process.env.PATH = `${bin}:${path}`;
        try {
          await submit('mocked', [srpm('hello'), srpm('world', { buildRequires: ['hello'] })]);
          // mock cannot run inside bubblewrap (it needs root for its chroots): such a builder is unsandboxed by choice.
          const [report] = await buildOne('b1', { builder: 'mock', sandbox: 'none' });
          assert.equal(report?.status, 'success', report?.reason ?? '');
        } finally {
          process.env.PATH = path;
        }
        const lines = readFileSync(calls, 'utf8').trim().split('\n');
        assert.deepEqual(lines, [
          'root=el9-devel-x86_64 srpm=hello-1.0-1.src.rpm repo-has=0',
          'root=el9-devel-x86_64 srpm=world-1.0-1.src.rpm repo-has=1',
        ]);
        assert.ok(existsSync(join(repos, 'devel', 'el9', 'x86_64', 'world-1.0-1.noarch.rpm')));
      });

    it('fails the task when the publishing command fails, and never because a report could not be sent', async () => {
      await submit('publish-fails', [srpm('hello')], ['dev@example.org']);
      const [failed] = await buildOne('b1', {
        publishers: [{ command: { command: ['sh', '-c', 'echo refusing these packages; exit 3', 'publish'] } }],
      });
      assert.equal(failed?.status, 'fail');
      assert.match(failed!.reason!, /The publishing command sh failed: exit code 3/);
      const info = YAML.parse(readFileSync(join(farm.results, 'publish-fails', 'el9-x86_64', 'buildinfo.yml'), 'utf8'));
      assert.deepEqual(info.phases.slice(-2), ['publish', 'publish-command']);

      // Nothing listens on port 9: the report fails, the task still succeeds.
      await submit('report-fails', [srpm('hello')], ['dev@example.org']);
      const [ok] = await buildOne('b1', { reports: [{ email: { host: '127.0.0.1', port: 9 } }] });
      assert.equal(ok?.status, 'success', ok?.reason ?? '');
      assert.equal((await getJobDetail(farm.registry.db, 'report-fails'))!.status, 'success');
    });

    if (dialect === 'sqlite')
      it('signs the packages with rpmsign and the configured key', async () => {
        const gnupg = join(farm.root, 'gnupg');
        mkdirSync(gnupg, { mode: 0o700 });
        stopAgentAtExit(gnupg);
        execFileSync(
          'gpg',
          [
            '--homedir',
            gnupg,
            '--batch',
            '--passphrase',
            '',
            '--quick-gen-key',
            'PkgForge Test <signer@example.org>',
            'rsa2048',
            'sign',
            'never',
          ],
          { stdio: 'ignore' },
        );
        const saved = process.env.GNUPGHOME;
        process.env.GNUPGHOME = gnupg;
        try {
          await submit('signed', [srpm('hello')]);
          const [report] = await buildOne('b1', { signers: [{ rpmsign: { key: 'PkgForge Test' } }] });
          assert.equal(report?.status, 'success', report?.reason ?? '');
        } finally {
          if (saved === undefined) delete process.env.GNUPGHOME;
          else process.env.GNUPGHOME = saved;
        }
        const rpm = join(farm.results, 'signed', 'el9-x86_64', 'hello-1.0-1.noarch.rpm');
        const sig = execFileSync('rpm', ['-qp', '--qf', '%{RSAHEADER:pgpsig}', rpm]).toString();
        assert.match(sig, /RSA\/SHA\d+, .*Key ID [0-9a-f]+/);
        const info = YAML.parse(readFileSync(join(farm.results, 'signed', 'el9-x86_64', 'buildinfo.yml'), 'utf8'));
        assert.ok(info.phases.includes('sign-rpmsign'));
      });

    if (dialect === 'sqlite')
      it("signs with the farm's own key, the APT repositories' one, when no key is named", async () => {
        const gnupg = join(farm.root, 'farm-gnupg');
        stopAgentAtExit(gnupg);
        await submit('farm-signed', [srpm('hello')]);
        const [report] = await buildOne('b1', { signers: ['rpmsign'], gnupg_home: gnupg });
        assert.equal(report?.status, 'success', report?.reason ?? '');
        const key = await farmSigningKey(gnupg, null);
        const rpm = join(farm.results, 'farm-signed', 'el9-x86_64', 'hello-1.0-1.noarch.rpm');
        const sig = execFileSync('rpm', ['-qp', '--qf', '%{RSAHEADER:pgpsig}|%{DSAHEADER:pgpsig}', rpm]).toString();
        // rpm names the key by the last 16 hex digits of its fingerprint.
        assert.match(sig, new RegExp(`Key ID ${key.fingerprint.slice(-16).toLowerCase()}`), sig);
      });

    it('refuses to start a second daemon under a builder name that is building elsewhere', async () => {
      await submit('busy', [srpm('hello')]);
      const me = (await builderIdentity(farm.registry.db, 'b2'))!;
      const claim = (await claimNextTask(farm.registry, me, 'otherhost[4242]', 60_000))!;
      await assert.rejects(buildOne('b2'), /Builder 'b2' is already building job busy on otherhost\[4242\]/);
      // The healthy build was not taken away.
      assert.equal((await getJobDetail(farm.registry.db, 'busy'))!.tasks[0]!.status, 'building');
      const { releaseClaim } = await import('../../src/registry/attempts.ts');
      await releaseClaim(farm.registry, claim, 'test over');
      await cancelTasks(farm.registry, 'busy');
    });

    it('refuses to start when a configured tool is missing, and records why', async () => {
      await assert.rejects(
        runBuildd(ctx('b2', { publishers: [{ command: { command: ['/nonexistent/pkgsubmit'] } }] }), {
          once: true,
          stop: never,
          abort: never,
        }),
        /missing tools: \/nonexistent\/pkgsubmit \(needed by command\)/,
      );
      const row = await farm.registry.db
        .selectFrom('builders')
        .select('unable_reason')
        .where('name', '=', 'b2')
        .executeTakeFirstOrThrow();
      assert.match(row.unable_reason!, /missing tools: \/nonexistent\/pkgsubmit/);
    });

    it("refuses to start a builder whose command builds the other family's packages than its platform", async () => {
      await addPlatforms(farm, 'deb12/x86_64');
      await addBuilder(farm.registry.db, 'bdeb', 'deb12', 'x86_64');
      await assert.rejects(
        runBuildd(ctx('bdeb'), { once: true, stop: never, abort: never }),
        /its builder command \(rpmbuild\) builds rpm packages, and the platform deb12 is deb/,
      );
    });
  });
