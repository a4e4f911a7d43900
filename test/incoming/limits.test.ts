import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { EntryOutcome } from '../../src/incoming/process-entry.ts';
import { runIncomingPass, type PassResult } from '../../src/incoming/processor.ts';
import { findJob } from '../../src/registry/jobs.ts';
import { addPlatforms, farmEnv, makeFarm, PKGFORGE_ARGS, type TestFarm, submitTo } from '../helpers/farm.ts';
import { writeJobDir } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { srpm } from '../helpers/srpm.ts';

const run = promisify(execFile);
const MiB = 1024 ** 2;
/** Another user: owns what the processor is not given. */
const STRANGER = 12345;

const job = (outcomes: EntryOutcome[], id: string) => outcomes.find((o) => o.job === id || o.entry === id);

for (const dialect of DIALECTS) {
  describe(`limits on what a submission can make the incoming processor do, on ${dialect}`, () => {
    let farm: TestFarm;
    let hello: string;
    let world: string;
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*');
      hello = srpm('hello');
      world = srpm('world');
    });
    after(() => farm.dispose());

    const only = async (overrides = {}) => {
      const result = await runIncomingPass(farm.ctx(overrides));
      assert.equal(result.outcomes.length, 1, JSON.stringify(result.outcomes));
      return result.outcomes[0]!;
    };
    const gone = (name: string) => !existsSync(join(farm.incoming, name));
    const nothingAccepted = (id: string) =>
      assert.deepEqual(
        readdirSync(farm.accepted).filter((n) => n.includes(id)),
        [],
      );

    it('refuses at once a job whose manifest declares a 1 TiB package, before looking at the file', async () => {
      // The file is small: a processor that believed the manifest would wait for the rest to arrive.
      writeJobDir(farm.incoming, 'terabyte', [hello], { editPackage: (p) => (p.size = 2 ** 40) });
      const outcome = await only();
      assert.equal(outcome.kind, 'invalid', JSON.stringify(outcome));
      const recorded = await findJob(farm.registry.db, 'terabyte');
      assert.equal(recorded?.status, 'invalid');
      assert.match(
        recorded!.reason!,
        /^hello-1\.0-1\.src\.rpm: is 1099511627776 bytes \(1 TiB\), more than the farm accepts for one package \(max_package_size: 8 GiB\)$/,
      );
      assert.ok(gone('terabyte'));
      nothingAccepted('terabyte');
    });

    it('refuses at once a job whose packages together pass max_job_size', async () => {
      writeJobDir(farm.incoming, 'too-much', [hello, world]);
      const outcome = await only({ limits: { maxPackageSize: MiB, maxJobSize: 1000 } });
      assert.equal(outcome.kind, 'invalid', JSON.stringify(outcome));
      assert.match(
        (await findJob(farm.registry.db, 'too-much'))!.reason!,
        /its 2 files are \d+ bytes .* together, more than the farm accepts for one job \(max_job_size: 1000 bytes\)/,
      );
      nothingAccepted('too-much');
    });

    it('refuses a large non-RPM by its header, before copying any of it', async () => {
      const dir = join(farm.incoming, 'sparse-junk');
      mkdirSync(dir);
      const junk = join(dir, 'junk-1-1.src.rpm');
      writeFileSync(junk, 'not an rpm');
      truncateSync(junk, 256 * MiB);
      writeFileSync(
        join(dir, 'build.yml'),
        `id: sparse-junk\nbucket: devel\npackages:\n  - file: junk-1-1.src.rpm\n    type: SRPM\n    size: ${256 * MiB}\n    sha1sum: ${'f'.repeat(40)}\n`,
      );
      // No room at all in accepted: had the processor started a copy, the job would wait for space.
      const outcome = await only({ freeSpace: async () => ({ available: 0, total: 0 }) });
      assert.equal(outcome.kind, 'invalid', JSON.stringify(outcome));
      assert.match(
        (await findJob(farm.registry.db, 'sparse-junk'))!.reason!,
        /^junk-1-1\.src\.rpm: not a valid RPM: it is not an RPM file/,
      );
      assert.ok(gone('sparse-junk'));
      nothingAccepted('sparse-junk');
    });

    it('keeps a job the accepted disk has no room for, says why on the job, and takes it once there is room', async () => {
      await submitTo(farm, 'no-room', [hello]);
      // A reserve larger than any disk: statfs says there is not enough free space.
      const waiting = await only({ reserve: { bytes: 2 ** 50 }, waitForJobMs: 0 });
      assert.equal(waiting.kind, 'deferred', JSON.stringify(waiting));
      const recorded = await findJob(farm.registry.db, 'no-room');
      assert.equal(recorded?.status, 'incoming');
      assert.match(
        recorded!.reason!,
        /^waiting for space in the accepted directory: hello-1\.0-1\.src\.rpm needs .* and 1024 TiB is kept free \(accepted_reserve\), but only .* is free; the job is kept and taken once there is room$/,
      );
      // The farm's full disk is not the submitter's fault: past the grace period, the job is still there.
      assert.ok(!gone('no-room'));
      nothingAccepted('no-room');
      assert.equal((await only({ reserve: { bytes: 0 } })).kind, 'registered');
      const done = await findJob(farm.registry.db, 'no-room');
      assert.equal(done?.status, 'registered');
      assert.equal(done?.reason, null);
    });

    it('lets a smaller job through while a larger one waits for space', async () => {
      const big = join(farm.root, 'big-1.0-1.src.rpm');
      copyFileSync(srpm('big'), big);
      appendFileSync(big, Buffer.alloc(2 * MiB, 1));
      await submitTo(farm, 'space-big', [big]);
      await submitTo(farm, 'space-small', [hello]);
      const result = await runIncomingPass(
        farm.ctx({ reserve: { bytes: 0 }, freeSpace: async () => ({ available: MiB, total: 100 * MiB }) }),
      );
      assert.equal(job(result.outcomes, 'space-big')?.kind, 'deferred', JSON.stringify(result.outcomes));
      assert.equal(job(result.outcomes, 'space-small')?.kind, 'registered', JSON.stringify(result.outcomes));
      assert.match(
        (await findJob(farm.registry.db, 'space-big'))!.reason!,
        /big-1\.0-1\.src\.rpm needs 2\.\d MiB and 0 bytes is kept free \(accepted_reserve\), but only .* is free/,
      );
      assert.equal((await only({ reserve: { bytes: 0 } })).kind, 'registered');
    });

    describe('a job directory the processor cannot read', () => {
      before(() =>
        assert.equal(process.geteuid?.(), 0, 'these tests make files another user owns: CI runs them as root'),
      );

      /**
       * One pass in a process that keeps root's uid but not its power to read what others keep
       * private (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH): as an incoming processor running as its
       * own user sees a submitter's files.
       */
      async function unprivilegedPass(env: Record<string, string> = {}): Promise<PassResult> {
        const { stdout } = await run(
          'setpriv',
          ['--bounding-set=-dac_override,-dac_read_search', process.execPath, ...PKGFORGE_ARGS, 'incoming', '--json'],
          { env: { ...process.env, ...farmEnv(farm, env) } },
        );
        return JSON.parse(stdout) as PassResult;
      }

      it('is reported with its reason on every pass, then removed from the queue after the grace period', async () => {
        const dir = writeJobDir(farm.incoming, 'private', [hello]);
        chownSync(dir, STRANGER, STRANGER);
        chmodSync(dir, 0o700);
        const first = await unprivilegedPass();
        assert.equal(first.outcomes.length, 1, JSON.stringify(first.outcomes));
        const waiting = first.outcomes[0]!;
        assert.equal(waiting.kind, 'waiting');
        assert.match(
          waiting.reason,
          /^private: the incoming processor cannot read this job directory \(EACCES: permission denied, open '.*\/incoming\/private'\); its owner must make it readable/,
        );
        const overdue = await unprivilegedPass({ PKGFORGE_WAIT_FOR_JOB: '0' });
        const refused = overdue.outcomes[0]!;
        assert.equal(refused.kind, 'invalid', JSON.stringify(overdue.outcomes));
        // Its files cannot be deleted by a processor that cannot read them; it is out of the queue, and
        // the message says what is left to do.
        assert.match(
          refused.reason,
          /refused after the grace period of 0 s; it could not be removed \(.*EACCES.*\): an administrator must remove it$/,
        );
        assert.ok(gone('private'));
      });

      it("is never what pkgforge submit makes, whatever the submitter's umask", async () => {
        const umask = process.umask(0o077);
        try {
          await submitTo(farm, 'umask-077', [hello]);
        } finally {
          process.umask(umask);
        }
        const dir = join(farm.incoming, 'umask-077');
        assert.equal(statSync(dir).mode & 0o777, 0o755);
        // Its files as if another user had submitted them.
        for (const name of readdirSync(dir)) {
          assert.equal(statSync(join(dir, name)).mode & 0o777, 0o644, name);
          chownSync(join(dir, name), STRANGER, STRANGER);
        }
        const result = await unprivilegedPass();
        assert.equal(job(result.outcomes, 'umask-077')?.kind, 'registered', JSON.stringify(result.outcomes));
      });

      it("is named by its path in messages, never by the processor's /proc/self/fd/N", async () => {
        const dir = writeJobDir(farm.incoming, 'private-manifest', [hello]);
        chownSync(join(dir, 'build.yml'), STRANGER, STRANGER);
        chmodSync(join(dir, 'build.yml'), 0o600);
        const result = await unprivilegedPass();
        const outcome = job(result.outcomes, 'private-manifest');
        assert.equal(outcome?.kind, 'waiting', JSON.stringify(result.outcomes));
        assert.ok(outcome.reason.includes(`'${join(farm.incoming, 'private-manifest', 'build.yml')}'`), outcome.reason);
        assert.doesNotMatch(outcome.reason, /\/proc\/self\/fd/);
      });
    });
  });
}
