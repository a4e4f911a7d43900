import assert from 'node:assert/strict';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { EntryOutcome } from '../../src/incoming/process-entry.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { submitJob } from '../../src/incoming/submit-job.ts';
import { findJob } from '../../src/registry/jobs.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { writeJobDir } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { srpm } from '../helpers/srpm.ts';

const MiB = 1024 ** 2;

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
    const nothingAccepted = (id: string) => assert.deepEqual(readdirSync(farm.accepted).filter((n) => n.includes(id)), []);

    it('refuses at once a job whose manifest declares a 1 TiB package, before looking at the file', async () => {
      // The file is small: a processor that believed the manifest would wait for the rest to arrive.
      writeJobDir(farm.incoming, 'terabyte', [hello], { editPackage: (p) => (p.size = 2 ** 40) });
      const outcome = await only();
      assert.equal(outcome.kind, 'invalid', JSON.stringify(outcome));
      const recorded = await findJob(farm.registry.db, 'terabyte');
      assert.equal(recorded?.status, 'invalid');
      assert.match(recorded!.reason!, /^hello-1\.0-1\.src\.rpm: is 1099511627776 bytes \(1 TiB\), more than the farm accepts for one package \(max_package_size: 8 GiB\)$/);
      assert.ok(gone('terabyte'));
      nothingAccepted('terabyte');
    });

    it('refuses at once a job whose packages together pass max_job_size', async () => {
      writeJobDir(farm.incoming, 'too-much', [hello, world]);
      const outcome = await only({ limits: { maxPackageSize: MiB, maxJobSize: 1000 } });
      assert.equal(outcome.kind, 'invalid', JSON.stringify(outcome));
      assert.match((await findJob(farm.registry.db, 'too-much'))!.reason!, /its 2 packages are \d+ bytes .* together, more than the farm accepts for one job \(max_job_size: 1000 bytes\)/);
      nothingAccepted('too-much');
    });

    it('refuses a large non-RPM by its header, before copying any of it', async () => {
      const dir = join(farm.incoming, 'sparse-junk');
      mkdirSync(dir);
      const junk = join(dir, 'junk-1-1.src.rpm');
      writeFileSync(junk, 'not an rpm');
      truncateSync(junk, 256 * MiB);
      writeFileSync(join(dir, 'build.yml'), `id: sparse-junk\nbucket: devel\npackages:\n  - file: junk-1-1.src.rpm\n    type: SRPM\n    size: ${256 * MiB}\n    sha1sum: ${'f'.repeat(40)}\n`);
      // No room at all in accepted: had the processor started a copy, the job would wait for space.
      const outcome = await only({ freeSpace: async () => ({ available: 0, total: 0 }) });
      assert.equal(outcome.kind, 'invalid', JSON.stringify(outcome));
      assert.match((await findJob(farm.registry.db, 'sparse-junk'))!.reason!, /^junk-1-1\.src\.rpm: not a valid RPM: it is not an RPM file/);
      assert.ok(gone('sparse-junk'));
      nothingAccepted('sparse-junk');
    });

    it('keeps a job the accepted disk has no room for, says why on the job, and takes it once there is room', async () => {
      await submitJob({ files: [hello], target: farm.incoming, bucket: 'devel', platforms: [], archs: [], report: [], id: 'no-room', submitter: null });
      // A reserve larger than any disk: statfs says there is not enough free space.
      const waiting = await only({ reserve: { bytes: 2 ** 50 }, waitForJobMs: 0 });
      assert.equal(waiting.kind, 'deferred', JSON.stringify(waiting));
      const recorded = await findJob(farm.registry.db, 'no-room');
      assert.equal(recorded?.status, 'incoming');
      assert.match(recorded!.reason!, /^waiting for space in the accepted directory: hello-1\.0-1\.src\.rpm needs .* and 1024 TiB is kept free \(accepted_reserve\), but only .* is free; the job is kept and taken once there is room$/);
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
      await submitJob({ files: [big], target: farm.incoming, bucket: 'devel', platforms: [], archs: [], report: [], id: 'space-big', submitter: null });
      await submitJob({ files: [hello], target: farm.incoming, bucket: 'devel', platforms: [], archs: [], report: [], id: 'space-small', submitter: null });
      const result = await runIncomingPass(farm.ctx({ reserve: { bytes: 0 }, freeSpace: async () => ({ available: MiB, total: 100 * MiB }) }));
      assert.equal(job(result.outcomes, 'space-big')?.kind, 'deferred', JSON.stringify(result.outcomes));
      assert.equal(job(result.outcomes, 'space-small')?.kind, 'registered', JSON.stringify(result.outcomes));
      assert.match((await findJob(farm.registry.db, 'space-big'))!.reason!, /big-1\.0-1\.src\.rpm needs 2\.\d MiB and 0 bytes is kept free \(accepted_reserve\), but only .* is free/);
      assert.equal((await only({ reserve: { bytes: 0 } })).kind, 'registered');
    });
  });
}
