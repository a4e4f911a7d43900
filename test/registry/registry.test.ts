import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { addBuilder, deleteBuilder, listBuilders } from '../../src/registry/builders.ts';
import { findJob, getJobDetail, insertJob, listJobs, setJobStatus } from '../../src/registry/jobs.ts';
import { addPlatform, changePlatform, listPlatforms } from '../../src/registry/platforms.ts';
import { refreshJobStatus, registerTasks } from '../../src/registry/tasks.ts';
import { migrateRegistry } from '../../src/registry/migrations.ts';
import { createToken } from '../../src/registry/tokens.ts';
import { addPlatforms } from '../helpers/farm.ts';
import { DIALECTS, makeRegistry, type TestRegistry } from '../helpers/registries.ts';

const manifest = (id: string, extra: Record<string, unknown> = {}) =>
  normaliseManifest(
    {
      id,
      bucket: 'devel',
      packages: [{ file: `${id}-1-1.src.rpm`, type: 'SRPM', size: 5, sha1sum: 'a'.repeat(40) }],
      ...extra,
    },
    id,
  );

for (const dialect of DIALECTS) {
  describe(`registry on ${dialect}`, () => {
    let t: TestRegistry;
    before(async () => {
      t = await makeRegistry(dialect);
    });
    after(() => t.dispose());
    /** The database's own error for a violated constraint on `jobs`: a UNIQUE one on uuid, or the CHECK on status. */
    const violated = (kind: 'unique uuid' | 'check status') =>
      dialect === 'sqlite'
        ? kind === 'unique uuid'
          ? { code: 'SQLITE_CONSTRAINT_UNIQUE', message: /UNIQUE constraint failed: jobs\.uuid/ }
          : { code: 'SQLITE_CONSTRAINT_CHECK', message: /CHECK constraint failed: status in / }
        : kind === 'unique uuid'
          ? { code: '23505', message: /violates unique constraint "jobs_uuid_key"/ }
          : { code: '23514', message: /violates check constraint "jobs_status_check"/ };

    it('migrates idempotently', async () => {
      assert.deepEqual(await migrateRegistry(t.registry.db, t.registry.caps), []);
    });

    it('adds platforms inactive, and deactivating clears auto', async () => {
      const p = await addPlatform(t.registry.db, 'el9', 'x86_64');
      assert.deepEqual([p.active, p.auto], [false, false]);
      await changePlatform(t.registry.db, 'el9', 'x86_64', 'activate');
      await changePlatform(t.registry.db, 'el9', 'x86_64', 'setauto');
      const off = await changePlatform(t.registry.db, 'el9', 'x86_64', 'deactivate');
      assert.deepEqual([off.active, off.auto], [false, false]);
      await assert.rejects(
        addPlatform(t.registry.db, 'el9', 'x86_64'),
        /Cannot add el9\/x86_64 platform, it already exists/,
      );
      await assert.rejects(
        changePlatform(t.registry.db, 'el7', 'x86_64', 'activate'),
        /Cannot modify el7\/x86_64 platform, it does not exist/,
      );
      const invalidName = (message: RegExp) => ({ code: 'PKGF_ERR_INVALID_NAME', message });
      await assert.rejects(
        addPlatform(t.registry.db, '../x', 'x86_64'),
        invalidName(/^Cannot add \.\.\/x\/x86_64 platform: the name may only contain/),
      );
      await assert.rejects(addPlatform(t.registry.db, 'el9-x', 'x86_64'), invalidName(/the name may only contain/));
      await assert.rejects(addPlatform(t.registry.db, 'el9', 'x'.repeat(21)), invalidName(/the architecture may only/));
      await assert.rejects(addBuilder(t.registry.db, '-b', 'el9', 'x86_64'), invalidName(/builder named '-b'/));
      await assert.rejects(createToken(t.registry.db, 'a b'), invalidName(/token for 'a b': user names may only/));
      assert.equal((await listPlatforms(t.registry.db)).length, 1);
    });

    it('adds builders only for existing platforms', async () => {
      await assert.rejects(addBuilder(t.registry.db, 'b1', 'el5', 'i386'), /Failed to find the platform 'el5\/i386'/);
      await addPlatform(t.registry.db, 'el8', 'x86_64');
      const b = await addBuilder(t.registry.db, 'host1_el8', 'el8', 'x86_64');
      assert.equal(b.platformActive, false);
      await assert.rejects(addBuilder(t.registry.db, 'host1_el8', 'el8', 'x86_64'), /already exists/);
      assert.deepEqual(
        (await listBuilders(t.registry.db)).map((x) => x.name),
        ['host1_el8'],
      );
      await deleteBuilder(t.registry.db, 'host1_el8');
      await assert.rejects(deleteBuilder(t.registry.db, 'host1_el8'), /does not appear to exist/);
    });

    it('records a job with its packages and never takes the same id twice', async () => {
      const job = await insertJob(t.registry, manifest('job-a', { platforms: ['all'], report: ['x@example.org'] }), {
        submitter: 'alice',
        submittedAt: 1000,
        incomingEntry: 'job-a',
      });
      assert.equal(job.status, 'incoming');
      assert.deepEqual(job.report, ['x@example.org']);
      await assert.rejects(
        insertJob(t.registry, manifest('job-a'), { submitter: 'bob', submittedAt: 2000, incomingEntry: 'other' }),
        (err: Error) => {
          // Said in our words, with the code that answers 409; the driver's error kept as the cause.
          assert.equal((err as { code?: string }).code, 'PKGF_ERR_JOB_ID');
          assert.equal(err.message, 'A job with ID job-a has been previously registered');
          const cause = err.cause as { code?: string; message: string };
          assert.equal(cause.code, violated('unique uuid').code);
          assert.match(cause.message, violated('unique uuid').message);
          return true;
        },
      );
      const again = await findJob(t.registry.db, 'job-a');
      assert.equal(again?.submitter, 'alice');
      const detail = await getJobDetail(t.registry.db, 'job-a');
      assert.deepEqual(
        detail?.packages.map((p) => p.file),
        ['job-a-1-1.src.rpm'],
      );
    });

    it('registers one task per selected active platform, once, and derives the job status from tasks', async () => {
      await addPlatforms(t, 'f40/x86_64*', 'f40/aarch64*', 'sl6/i386');
      await insertJob(t.registry, manifest('job-b'), { submitter: null, submittedAt: null, incomingEntry: null });
      const targets = await registerTasks(t.registry, 'job-b', ['auto'], ['all'], 'rpm');
      assert.deepEqual(
        targets.map((x) => `${x.platform}/${x.arch}`),
        ['f40/aarch64', 'f40/x86_64'],
      );
      // A second run after a crash adds nothing twice.
      await registerTasks(t.registry, 'job-b', ['auto'], ['all'], 'rpm');
      const detail = (await getJobDetail(t.registry.db, 'job-b'))!;
      assert.equal(detail.status, 'registered');
      assert.equal(detail.tasks.length, 2);
      assert.ok(detail.tasks.every((x) => x.status === 'needs build'));

      const row = await t.registry.db
        .selectFrom('jobs')
        .select('id')
        .where('uuid', '=', 'job-b')
        .executeTakeFirstOrThrow();
      await t.registry.db
        .updateTable('tasks')
        .set({ status: 'success' })
        .where('id', '=', detail.tasks[0]!.id)
        .execute();
      await refreshJobStatus(t.registry.db, row.id, t.registry.caps);
      assert.equal((await findJob(t.registry.db, 'job-b'))?.status, 'partial success');
      await t.registry.db.updateTable('tasks').set({ status: 'fail' }).where('id', '=', detail.tasks[1]!.id).execute();
      await refreshJobStatus(t.registry.db, row.id, t.registry.caps);
      assert.equal((await findJob(t.registry.db, 'job-b'))?.status, 'partial fail');
    });

    it("gives a platform the family its name says unless told, one per name, and a job tasks only on its family's platforms", async () => {
      await addPlatforms(t, 'deb12/x86_64*', 'deb12/aarch64*');
      const rpmNamedDeb = await addPlatform(t.registry.db, 'debby', 'x86_64', 'deb');
      assert.deepEqual(
        (await listPlatforms(t.registry.db))
          .filter((p) => p.name.startsWith('deb'))
          .map((p) => [p.name, p.arch, p.family]),
        [
          ['deb12', 'aarch64', 'deb'],
          ['deb12', 'x86_64', 'deb'],
          ['debby', 'x86_64', 'deb'],
        ],
      );
      assert.equal(rpmNamedDeb.family, 'deb');
      await assert.rejects(addPlatform(t.registry.db, 'deb12', 'i386', 'rpm'), {
        message:
          'Cannot add deb12/i386 platform as rpm: the platform deb12 builds deb packages on its other architectures',
      });
      await insertJob(t.registry, manifest('job-deb'), { submitter: null, submittedAt: null, incomingEntry: null });
      // Every auto platform is active here (el and f platforms too): only the Debian ones are taken.
      assert.deepEqual(
        (await registerTasks(t.registry, 'job-deb', ['auto'], ['all'], 'deb')).map((x) => `${x.platform}/${x.arch}`),
        ['deb12/aarch64', 'deb12/x86_64'],
      );
      assert.deepEqual(await registerTasks(t.registry, 'job-deb', ['f40'], ['all'], 'deb'), []);
      await t.registry.db.deleteFrom('tasks').execute();
      await t.registry.db.deleteFrom('platforms').where('name', 'like', 'deb%').execute();
    });

    it('leaves a job whose filters select nothing registered with no tasks', async () => {
      await insertJob(t.registry, manifest('job-c'), { submitter: null, submittedAt: null, incomingEntry: null });
      assert.deepEqual(await registerTasks(t.registry, 'job-c', ['nosuch'], ['all'], 'rpm'), []);
      const detail = (await getJobDetail(t.registry.db, 'job-c'))!;
      assert.equal(detail.status, 'registered');
      assert.equal(detail.tasks.length, 0);
    });

    it('lists jobs newest first with filters', async () => {
      // A registry of its own, holding exactly the jobs listed.
      const own = await makeRegistry(dialect);
      try {
        await insertJob(own.registry, manifest('list-a'), {
          submitter: 'alice',
          submittedAt: 1000,
          incomingEntry: 'list-a',
        });
        await insertJob(own.registry, manifest('list-b'), { submitter: null, submittedAt: null, incomingEntry: null });
        await insertJob(own.registry, manifest('list-c'), {
          submitter: 'bob',
          submittedAt: 3000,
          incomingEntry: 'list-c',
        });
        await setJobStatus(own.registry.db, 'list-a', 'invalid', 'because');
        assert.deepEqual(
          (await listJobs(own.registry.db)).map((j) => j.id),
          ['list-c', 'list-b', 'list-a'],
        );
        assert.deepEqual(
          (await listJobs(own.registry.db, { status: 'invalid' })).map((j) => [j.id, j.reason]),
          [['list-a', 'because']],
        );
        assert.deepEqual(
          (await listJobs(own.registry.db, { submitter: 'alice' })).map((j) => j.id),
          ['list-a'],
        );
        assert.deepEqual((await listJobs(own.registry.db, { bucket: 'nope' })).length, 0);
        await assert.rejects(
          setJobStatus(own.registry.db, 'nope', 'fail'),
          /Failed to find a registry entry for job nope/,
        );
      } finally {
        await own.dispose();
      }
    });

    it("refuses a status that does not exist (the original's `failed`)", async () => {
      await insertJob(t.registry, manifest('bad-status'), { submitter: null, submittedAt: null, incomingEntry: null });
      await assert.rejects(
        t.registry.db
          .updateTable('jobs')
          .set({ status: 'failed' as never })
          .where('uuid', '=', 'bad-status')
          .execute(),
        violated('check status'),
      );
      assert.equal((await findJob(t.registry.db, 'bad-status'))?.status, 'incoming');
    });
  });
}
