import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseManifest } from '../../src/core/manifest.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { commitStagedJob, stageJob } from '../../src/incoming/transfer.ts';
import { submitJob } from '../../src/incoming/submit-job.ts';
import { findJob, getJobDetail, insertJob, setJobStatus } from '../../src/registry/jobs.ts';
import { listRefusedEntries } from '../../src/registry/refused-entries.ts';
import { openRegistry } from '../../src/registry/registry.ts';
import { addPlatforms, makeFarm, type TestFarm, submitTo } from '../helpers/farm.ts';
import { writeJobDir } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { buildRpm, specFor, srpm } from '../helpers/srpm.ts';

/**
 * The user running the tests, by name as the processor records the owner of a job directory (a uid
 * without a passwd entry stays a number).
 */
const me = (() => {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid!());
  }
})();

/** The identity of a directory, as the queue scan records it. */
function inodeOf(dir: string): string {
  const st = lstatSync(dir, { bigint: true });
  return `${st.dev}:${st.ino}:${st.birthtimeNs}`;
}

for (const dialect of DIALECTS) {
  describe(`incoming processor on ${dialect}`, () => {
    let farm: TestFarm;
    let hello: string;
    let world: string;
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*', 'el9/aarch64*', 'f40/x86_64');
      hello = srpm('hello');
      world = srpm('world', { buildRequires: ['hello'] });
    });
    after(() => farm.dispose());

    const pass = (overrides = {}) => runIncomingPass(farm.ctx(overrides));
    const only = async (overrides = {}) => {
      const result = await pass(overrides);
      assert.equal(result.outcomes.length, 1, JSON.stringify(result.outcomes));
      return result.outcomes[0]!;
    };
    const gone = (name: string) => !existsSync(join(farm.incoming, name));
    /** A copy of a package under another name. */
    const named = (from: string, name: string) => {
      const dir = join(farm.root, `named-${Math.random().toString(36).slice(2)}`);
      mkdirSync(dir);
      copyFileSync(from, join(dir, name));
      return join(dir, name);
    };

    it('takes a submitted job through all six stages', async () => {
      const manifest = await submitJob({
        files: [hello, world],
        target: farm.incoming,
        bucket: 'devel',
        platforms: ['auto'],
        archs: [],
        report: ['rel@example.org'],
        id: 'good-1',
        submitter: 'nobody',
      });
      assert.equal(manifest.packages.length, 2);
      const outcome = await only();
      assert.equal(outcome.kind, 'registered');
      const job = (await getJobDetail(farm.registry.db, 'good-1'))!;
      assert.equal(job.status, 'registered');
      assert.deepEqual(
        job.tasks.map((t) => `${t.platform}/${t.arch}:${t.status}`),
        ['el9/aarch64:needs build', 'el9/x86_64:needs build'],
      );
      assert.deepEqual(
        job.packages.map((p) => `${p.position}:${p.name}-${p.version}-${p.release}`),
        ['0:hello-1.0-1', '1:world-1.0-1'],
      );
      assert.equal(job.submitter, me);
      assert.ok(job.submittedAt! > 0);
      // The accepted copy: both packages and a manifest naming the submitter and submission time.
      const copy = join(farm.accepted, 'good-1');
      assert.deepEqual(readdirSync(copy).sort(), ['build.yml', 'hello-1.0-1.src.rpm', 'world-1.0-1.src.rpm']);
      const accepted = parseManifest(readFileSync(join(copy, 'build.yml'), 'utf8'), 'accepted');
      assert.equal(accepted.submitter, me);
      assert.equal(accepted.subtime, Math.floor(job.submittedAt! / 1000));
      assert.deepEqual(accepted.report, ['rel@example.org']);
      assert.ok(gone('good-1'));
      assert.deepEqual(
        readdirSync(farm.accepted).filter((n) => n.startsWith('.staging')),
        [],
      );
    });

    it('makes a job into a bucket the farm does not list (`buckets:`) invalid, saying which it accepts', async () => {
      await submitTo(farm, 'bucket-unknown', [srpm('hello')], { bucket: 'devle' });
      await submitTo(farm, 'bucket-listed', [srpm('hello')], { bucket: 'devel' });
      const pass = await runIncomingPass(farm.ctx({ buckets: ['devel', 'stable'] }));
      const outcome = (id: string) => pass.outcomes.find((o) => o.job === id);
      assert.equal(outcome('bucket-listed')?.kind, 'registered', JSON.stringify(pass.outcomes));
      assert.equal(outcome('bucket-unknown')?.kind, 'invalid');
      const job = (await getJobDetail(farm.registry.db, 'bucket-unknown'))!;
      assert.equal(job.status, 'invalid');
      assert.equal(job.reason, "the bucket 'devle' is not one this farm accepts (buckets: devel, stable)");
    });

    it('waits for a job whose manifest has not arrived, then gives up after the grace period', async () => {
      writeJobDir(farm.incoming, 'no-manifest', [hello], { noManifest: true });
      const waiting = await only();
      assert.equal(waiting.kind, 'waiting');
      assert.match(waiting.kind === 'waiting' ? waiting.reason : '', /manifest has not arrived/);
      assert.ok(!gone('no-manifest'));
      const final = await only({ waitForJobMs: 0 });
      assert.equal(final.kind, 'invalid');
      assert.ok(gone('no-manifest'));
      assert.equal(await findJob(farm.registry.db, 'no-manifest'), null);
      // No job record can exist, but the refusal is recorded under the directory's name.
      const refused = (await listRefusedEntries(farm.registry.db, { submitter: me })).entries.find(
        (e) => e.entry === 'no-manifest',
      );
      assert.ok(refused, 'the refused entry was not recorded');
      assert.equal(refused.reason, final.kind === 'invalid' ? final.reason : '');
      assert.match(refused.reason, /manifest has not arrived/);
      assert.ok(Date.now() - refused.refusedAt < 60_000);
    });

    it('records an entry refused under a name with control characters, printable', async () => {
      writeJobDir(farm.incoming, 'evil\x1b[31mname', [hello], { noManifest: true });
      assert.equal((await only({ waitForJobMs: 0 })).kind, 'invalid');
      const { entries } = await listRefusedEntries(farm.registry.db, { submitter: me, limit: 1 });
      assert.equal(entries[0]?.entry, 'evil\\x1b[31mname');
      assert.ok(!entries[0]!.reason.includes('\x1b'), entries[0]!.reason);
    });

    it('waits for a file still arriving (too short), then marks the job invalid', async () => {
      writeJobDir(farm.incoming, 'truncated', [hello]);
      const f = join(farm.incoming, 'truncated', 'hello-1.0-1.src.rpm');
      writeFileSync(f, readFileSync(f).subarray(0, 1000));
      assert.equal((await only()).kind, 'waiting');
      assert.equal((await findJob(farm.registry.db, 'truncated'))?.status, 'incoming');
      const final = await only({ waitForJobMs: 0 });
      assert.equal(final.kind, 'invalid');
      const job = await findJob(farm.registry.db, 'truncated');
      assert.equal(job?.status, 'invalid');
      assert.match(job!.reason!, /hello-1\.0-1\.src\.rpm: is 1000 bytes, the manifest says \d+ .*grace period/);
      assert.ok(gone('truncated'));
      assert.ok(!existsSync(join(farm.accepted, 'truncated')));
    });

    it('registers a job that was waiting for a file once the file has arrived', async () => {
      const dir = writeJobDir(farm.incoming, 'late-file', [hello]);
      const f = join(dir, 'hello-1.0-1.src.rpm');
      const whole = readFileSync(f);
      writeFileSync(f, whole.subarray(0, 100));
      assert.equal((await only()).kind, 'waiting');
      writeFileSync(f, whole);
      assert.equal((await only()).kind, 'registered');
      assert.equal((await findJob(farm.registry.db, 'late-file'))?.status, 'registered');
    });

    it('refuses a build.yml that is a FIFO without blocking on it', async () => {
      const dir = writeJobDir(farm.incoming, 'fifo', [hello], { noManifest: true });
      execFileSync('mkfifo', [join(dir, 'build.yml')]);
      const outcome = await only();
      assert.equal(outcome.kind, 'invalid');
      assert.match(outcome.kind === 'invalid' ? outcome.reason : '', /not a regular file/);
    });

    it('treats a checksum mismatch as still arriving, then invalid with the reason', async () => {
      writeJobDir(farm.incoming, 'bad-sum', [hello], { editPackage: (p) => (p.sha1sum = 'f'.repeat(40)) });
      assert.equal((await only()).kind, 'waiting');
      await only({ waitForJobMs: 0 });
      const job = await findJob(farm.registry.db, 'bad-sum');
      assert.equal(job?.status, 'invalid');
      assert.match(job!.reason!, /hello-1\.0-1\.src\.rpm: the sha1sum does not match the manifest/);
      assert.deepEqual(
        readdirSync(farm.accepted).filter((n) => n.includes('bad-sum')),
        [],
      );
    });

    it('checks sha256sum as well when the manifest has it', async () => {
      writeJobDir(farm.incoming, 'bad-sha256', [hello], { editPackage: (p) => (p.sha256sum = '0'.repeat(64)) });
      await only({ waitForJobMs: 0 });
      assert.match((await findJob(farm.registry.db, 'bad-sha256'))!.reason!, /sha256sum does not match/);
    });

    it('accepts a manifest with only sha1sum, as the original client wrote', async () => {
      writeJobDir(farm.incoming, 'sha1-only', [hello], { editPackage: (p) => delete p.sha256sum });
      assert.equal((await only()).kind, 'registered');
    });

    it('refuses a package that is a symbolic link, immediately, without touching its target', async () => {
      const dir = writeJobDir(farm.incoming, 'symlinked', [hello]);
      const f = join(dir, 'hello-1.0-1.src.rpm');
      const secret = join(farm.root, 'secret.src.rpm');
      writeFileSync(secret, readFileSync(f));
      const { rmSync } = await import('node:fs');
      rmSync(f);
      symlinkSync(secret, f);
      const outcome = await only();
      assert.equal(outcome.kind, 'invalid');
      assert.match(
        (await findJob(farm.registry.db, 'symlinked'))!.reason!,
        /hello-1\.0-1\.src\.rpm: is a symbolic link/,
      );
      assert.ok(existsSync(secret));
      assert.ok(gone('symlinked'));
    });

    it('refuses a package with another hard link', async () => {
      const dir = writeJobDir(farm.incoming, 'hardlinked', [hello]);
      linkSync(join(dir, 'hello-1.0-1.src.rpm'), join(farm.root, 'other-link'));
      await only();
      assert.match((await findJob(farm.registry.db, 'hardlinked'))!.reason!, /has 2 hard links/);
      assert.ok(existsSync(join(farm.root, 'other-link')));
    });

    it('refuses a manifest that is a symbolic link', async () => {
      const dir = writeJobDir(farm.incoming, 'manifest-link', [hello], { noManifest: true });
      symlinkSync('/etc/passwd', join(dir, 'build.yml'));
      const outcome = await only();
      assert.equal(outcome.kind, 'invalid');
      assert.match(outcome.kind === 'invalid' ? outcome.reason : '', /manifest is a symbolic link/);
      assert.ok(existsSync('/etc/passwd'));
    });

    for (const [label, name, fn, reason] of [
      [
        'a non-RPM named .src.rpm',
        'fake',
        () => {
          const p = join(farm.root, 'fake-1-1.src.rpm');
          writeFileSync(p, 'not an rpm\n'.repeat(10));
          return p;
        },
        /fake-1-1\.src\.rpm: not a valid RPM: it is not an RPM file/,
      ],
      [
        'a binary RPM',
        'binary',
        () => {
          const p = join(farm.root, 'bin-1.0-1.src.rpm');
          writeFileSync(p, readFileSync(buildRpm(specFor('bin'), 'binary')));
          return p;
        },
        /bin-1\.0-1\.src\.rpm: it is a binary RPM/,
      ],
    ] as const) {
      it(`marks a job with ${label} invalid at once, naming the file`, async () => {
        writeJobDir(farm.incoming, name, [fn()]);
        assert.equal((await only()).kind, 'invalid');
        const job = await findJob(farm.registry.db, name);
        assert.equal(job?.status, 'invalid');
        assert.match(job!.reason!, reason);
        assert.ok(gone(name));
      });
    }

    for (const [label, name, options, reason] of [
      [
        'malformed YAML',
        'malformed',
        { rawManifest: 'id: malformed\nbucket: [devel\n' },
        /malformed YAML.*line \d+, column \d+/,
      ],
      [
        'an alias bomb',
        'bomb',
        {
          rawManifest:
            'a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c]\n',
        },
        /aliases/,
      ],
      ['an id of 51 characters', 'long-id', { manifest: { id: 'x'.repeat(51) } }, /51 characters/],
      ['no packages', 'empty-job', { manifest: { packages: [] } }, /lists no packages/],
      ['a YAML tag', 'tagged', { rawManifest: 'id: !!js/function "x"\nbucket: devel\npackages: []\n' }, /build\.yml/],
    ] as const) {
      it(`refuses a manifest with ${label} after the grace period, registering nothing`, async () => {
        writeJobDir(farm.incoming, name, [hello], options as never);
        assert.equal((await only()).kind, 'waiting');
        const outcome = await only({ waitForJobMs: 0 });
        assert.equal(outcome.kind, 'invalid');
        assert.match(outcome.kind === 'invalid' ? outcome.reason : '', reason);
        assert.ok(gone(name));
        assert.equal(await findJob(farm.registry.db, name), null);
      });
    }

    for (const [label, name, files, options, reason] of [
      [
        'a file name with a path',
        'traversal',
        () => [hello],
        { editPackage: (p: Record<string, unknown>) => (p.file = '../../outside.src.rpm') },
        /contains a path/,
      ],
      [
        'a file name with a right-to-left override',
        'bidi',
        () => [named(hello, 'hello\u202egpj.src.rpm')],
        {},
        /package file 'hello\\u202egpj\.src\.rpm': the file name contains the invisible or text-direction character \\u202e/,
      ],
      [
        'a file name with a zero-width space',
        'zero-width',
        () => [named(hello, 'hel\u200blo-1.0-1.src.rpm')],
        {},
        /\\u200b/,
      ],
      [
        'two file names that differ only in their Unicode form',
        'nfc-nfd',
        () => [named(hello, 'caf\u00e9-1.src.rpm'), named(world, 'cafe\u0301-1.src.rpm')],
        {},
        /differ only in their Unicode form/,
      ],
      [
        'a package entry named build.yml',
        'manifest-as-package',
        () => [hello],
        { editPackage: (p: Record<string, unknown>) => (p.file = 'build.yml') },
        /package file 'build\.yml': build\.yml is the name of the job's manifest/,
      ],
    ] as const) {
      it(`refuses a manifest with ${label} at once, registering nothing`, async () => {
        writeJobDir(farm.incoming, name, files(), options as never);
        const outcome = await only();
        assert.equal(outcome.kind, 'invalid', JSON.stringify(outcome));
        assert.match(outcome.kind === 'invalid' ? outcome.reason : '', reason);
        assert.ok(gone(name));
        assert.equal(await findJob(farm.registry.db, name), null);
      });
    }

    it('removes plain files and symbolic links in incoming as cruft, never following a link', async () => {
      const target = join(farm.root, 'precious');
      mkdirSync(target);
      writeFileSync(join(target, 'keep'), 'x');
      symlinkSync(target, join(farm.incoming, 'link-to-dir'));
      writeFileSync(join(farm.incoming, 'a-job-that-is-a-file'), 'not a directory');
      const result = await pass();
      assert.deepEqual(result.cruftRemoved.sort(), [
        join(farm.incoming, 'a-job-that-is-a-file'),
        join(farm.incoming, 'link-to-dir'),
      ]);
      assert.deepEqual(readdirSync(farm.incoming), []);
      assert.ok(existsSync(join(target, 'keep')));
    });

    it('rejects a reused job id and leaves the earlier job untouched', async () => {
      await submitTo(farm, 'dup', [hello]);
      assert.equal((await only()).kind, 'registered');
      const before = (await getJobDetail(farm.registry.db, 'dup'))!;
      writeJobDir(farm.incoming, 'someone-else', [world], { manifest: { id: 'dup', bucket: 'other' } });
      const outcome = await only();
      assert.equal(outcome.kind, 'rejected');
      assert.match(
        outcome.kind === 'rejected' ? outcome.reason : '',
        /A job with ID dup has been previously registered/,
      );
      assert.deepEqual(await getJobDetail(farm.registry.db, 'dup'), before);
      assert.deepEqual(readdirSync(join(farm.accepted, 'dup')).sort(), ['build.yml', 'hello-1.0-1.src.rpm']);
      assert.ok(gone('someone-else'));
      // The job is the earlier submitter's; this submission is recorded as a refused entry.
      const { entries } = await listRefusedEntries(farm.registry.db, { limit: 1 });
      assert.equal(entries[0]?.entry, 'someone-else');
      assert.match(entries[0]!.reason, /A job with ID dup has been previously registered/);
    });

    it('rejects a resubmission of an old id in a directory of the same name', async () => {
      await submitTo(farm, 'resubmitted', [hello]);
      assert.equal((await only()).kind, 'registered');
      await submitTo(farm, 'resubmitted', [world]);
      const outcome = await only();
      assert.equal(outcome.kind, 'rejected');
      assert.match(
        outcome.kind === 'rejected' ? outcome.reason : '',
        /A job with ID resubmitted has been previously registered/,
      );
      assert.deepEqual(readdirSync(join(farm.accepted, 'resubmitted')).sort(), ['build.yml', 'hello-1.0-1.src.rpm']);
      assert.ok(gone('resubmitted'));
    });

    it('finishes a job whose processor was killed after the transfer', async () => {
      const dir = writeJobDir(farm.incoming, 'crash-after-transfer', [hello]);
      const manifest = parseManifest(readFileSync(join(dir, 'build.yml'), 'utf8'), 'x');
      const st = statSync(dir);
      await insertJob(farm.registry, manifest, {
        submitter: me,
        submittedAt: st.ctimeMs,
        incomingEntry: 'crash-after-transfer',
        incomingInode: inodeOf(dir),
      });
      await commitStagedJob(await stageJob(dir, farm.accepted, manifest), farm.accepted, manifest);
      await setJobStatus(farm.registry.db, 'crash-after-transfer', 'valid');
      const outcome = await only();
      assert.equal(outcome.kind, 'registered');
      assert.equal((await findJob(farm.registry.db, 'crash-after-transfer'))?.status, 'registered');
      assert.ok(gone('crash-after-transfer'));
    });

    it("copies again when an interrupted job's accepted copy is damaged", async () => {
      const dir = writeJobDir(farm.incoming, 'crash-damaged', [hello]);
      const manifest = parseManifest(readFileSync(join(dir, 'build.yml'), 'utf8'), 'x');
      await insertJob(farm.registry, manifest, {
        submitter: me,
        submittedAt: statSync(dir).ctimeMs,
        incomingEntry: 'crash-damaged',
        incomingInode: inodeOf(dir),
      });
      await setJobStatus(farm.registry.db, 'crash-damaged', 'valid');
      mkdirSync(join(farm.accepted, 'crash-damaged'));
      writeFileSync(join(farm.accepted, 'crash-damaged', 'hello-1.0-1.src.rpm'), 'half');
      assert.equal((await only()).kind, 'registered');
      assert.equal(
        readFileSync(join(farm.accepted, 'crash-damaged', 'hello-1.0-1.src.rpm')).length,
        readFileSync(hello).length,
      );
    });

    it('finishes an interrupted job whose incoming directory has gone: registered from a verified copy, else failed', async () => {
      const dir = writeJobDir(farm.incoming, 'orphan-copied', [hello]);
      const manifest = parseManifest(readFileSync(join(dir, 'build.yml'), 'utf8'), 'x');
      await insertJob(farm.registry, manifest, {
        submitter: me,
        submittedAt: statSync(dir).ctimeMs,
        incomingEntry: 'orphan-copied',
        incomingInode: inodeOf(dir),
      });
      await commitStagedJob(await stageJob(dir, farm.accepted, manifest), farm.accepted, manifest);
      await setJobStatus(farm.registry.db, 'orphan-copied', 'valid');
      rmSync(dir, { recursive: true });

      const dir2 = writeJobDir(farm.incoming, 'orphan-lost', [hello]);
      const manifest2 = parseManifest(readFileSync(join(dir2, 'build.yml'), 'utf8'), 'x');
      await insertJob(farm.registry, manifest2, {
        submitter: me,
        submittedAt: statSync(dir2).ctimeMs,
        incomingEntry: 'orphan-lost',
        incomingInode: inodeOf(dir2),
      });
      rmSync(dir2, { recursive: true });

      // Within the grace period nothing happens; after it, both are settled.
      assert.deepEqual((await pass()).outcomes, []);
      const settled = await pass({ waitForJobMs: 0 });
      assert.deepEqual(settled.outcomes.map((o) => `${o.job}:${o.kind}`).sort(), [
        'orphan-copied:registered',
        'orphan-lost:fail',
      ]);
      assert.equal((await findJob(farm.registry.db, 'orphan-copied'))?.status, 'registered');
      const lost = await findJob(farm.registry.db, 'orphan-lost');
      assert.equal(lost?.status, 'fail');
      assert.match(lost!.reason!, /left the incoming directory before it was accepted/);
    });

    it('handles an entry whose name is near the length limit', async () => {
      const name = `n${'x'.repeat(240)}`;
      writeJobDir(farm.incoming, name, [hello], { manifest: { id: 'long-name' } });
      assert.equal((await only()).kind, 'registered');
      assert.ok(gone(name));
    });

    it('removes a staging directory left by a processor killed mid-copy', async () => {
      mkdirSync(join(farm.accepted, '.staging-killed-1234'));
      writeFileSync(join(farm.accepted, '.staging-killed-1234', 'partial'), 'x');
      await pass();
      assert.ok(!existsSync(join(farm.accepted, '.staging-killed-1234')));
    });

    it('cleans up the entry of a job registered just before a crash, leaving the job alone', async () => {
      const dir = writeJobDir(farm.incoming, 'crash-after-register', [hello]);
      const manifest = parseManifest(readFileSync(join(dir, 'build.yml'), 'utf8'), 'x');
      await insertJob(farm.registry, manifest, {
        submitter: me,
        submittedAt: statSync(dir).ctimeMs,
        incomingEntry: 'crash-after-register',
        incomingInode: inodeOf(dir),
      });
      await setJobStatus(farm.registry.db, 'crash-after-register', 'registered');
      const outcome = await only();
      assert.equal(outcome.kind, 'cleaned');
      assert.equal((await findJob(farm.registry.db, 'crash-after-register'))?.status, 'registered');
      assert.ok(gone('crash-after-register'));
    });

    it('never processes one job twice when two processors run at once', async () => {
      for (let i = 0; i < 10; i++) await submitTo(farm, `race-${i}`, [hello]);
      const results = await Promise.all([pass(), pass(), pass()]);
      const registered = results
        .flatMap((r) => r.outcomes)
        .filter((o) => o.kind === 'registered')
        .map((o) => o.job)
        .sort();
      assert.deepEqual(registered, Array.from({ length: 10 }, (_, i) => `race-${i}`).sort());
      assert.ok(
        results.some((r) => !r.ran),
        'a concurrent pass should have found the lock taken',
      );
      const tasks = await farm.registry.db
        .selectFrom('tasks')
        .innerJoin('jobs', 'jobs.id', 'tasks.job_id')
        .select('jobs.uuid')
        .where('jobs.uuid', 'like', 'race-%')
        .execute();
      assert.equal(tasks.length, 20);
    });

    it('keeps the submission when the registry is unreachable, and processes it once it is back', async () => {
      await submitTo(farm, 'db-down', [hello]);
      // SQLite has no server to lose; a PostgreSQL server that refuses connections stands for an outage.
      if (dialect === 'postgresql') {
        const down = await openRegistry({
          type: 'postgresql',
          connectionString: 'postgresql://postgres@127.0.0.1:1/none',
        });
        const result = await runIncomingPass(farm.ctx({ registry: down, retry: { attempts: 3, delayMs: 5 } }));
        await down.close();
        assert.match(result.registryError ?? '', /db-down: .*ECONNREFUSED|db-down: .*connect/);
      }
      assert.ok(!gone('db-down'));
      assert.equal((await only()).kind, 'registered');
    });
  });
}
