import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { filterWarnings } from '../../src/core/targets.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { listPlatforms } from '../../src/registry/platforms.ts';
import { validateDsc } from '../../src/sources/dsc.ts';
import { buildDsc, clearsign, makeSigningKey } from '../helpers/dsc.ts';
import { addPlatforms, makeFarm, submitTo, type TestFarm } from '../helpers/farm.ts';
import { digest } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { srpm } from '../helpers/srpm.ts';

/** A copy of a .dsc and its files in a directory of their own, `change` applied to the named file. */
async function copyOf(dsc: string, change?: { file: string; edit: (b: Buffer) => Buffer }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pkgforge-dsc-copy-'));
  const files = [basename(dsc), ...(await validateDsc(dsc)).parts.map((p) => p.file)];
  for (const f of files) copyFileSync(join(dirname(dsc), f), join(dir, f));
  if (change) writeFileSync(join(dir, change.file), change.edit(readFileSync(join(dir, change.file))));
  return join(dir, basename(dsc));
}

/** The same bytes but one: the size stays, the SHA-256 does not. */
const flipLastByte = (b: Buffer) => Buffer.concat([b.subarray(0, -1), Buffer.from([b.at(-1)! ^ 1])]);

for (const dialect of DIALECTS) {
  describe(`Debian source packages (.dsc) as jobs, on ${dialect}`, () => {
    let farm: TestFarm;
    let dsc: string;
    let parts: string[];
    before(async () => {
      farm = await makeFarm(dialect);
      // Both families active and auto: a .dsc job goes only to the Debian ones.
      await addPlatforms(farm, 'el9/x86_64*', 'deb12/x86_64*', 'deb12/aarch64*');
      dsc = buildDsc('greeter', { version: '2.10-3' });
      parts = (await validateDsc(dsc)).parts.map((p) => p.file);
    });
    after(() => farm.dispose());

    it('takes a .dsc with every file it lists, checks them again from the accepted copy, and registers it on deb platforms only', async () => {
      const manifest = await submitTo(farm, 'dsc-ok', [dsc]);
      assert.deepEqual(
        manifest.packages.map((p) => [p.file, p.type, p.parts?.map((x) => x.file)]),
        [['greeter_2.10-3.dsc', 'DSC', parts]],
      );
      assert.deepEqual(
        readdirSync(join(farm.incoming, 'dsc-ok')).sort(),
        ['build.yml', 'greeter_2.10-3.dsc', ...parts].sort(),
      );
      const pass = await runIncomingPass(farm.ctx());
      const outcome = pass.outcomes.find((o) => o.job === 'dsc-ok');
      assert.equal(outcome?.kind, 'registered', JSON.stringify(pass.outcomes));
      const job = (await getJobDetail(farm.registry.db, 'dsc-ok'))!;
      // `Architecture: all`: one build per platform, on amd64.
      assert.deepEqual(
        job.tasks.map((t) => `${t.platform}/${t.arch}`),
        ['deb12/x86_64'],
      );
      assert.equal(job.family, 'deb');
      assert.deepEqual(
        job.packages.map((p) => [p.type, p.name, p.version, p.release]),
        [['DSC', 'greeter', '2.10', '3']],
      );
      for (const f of ['greeter_2.10-3.dsc', ...parts])
        assert.equal(digest(join(farm.accepted, 'dsc-ok', f), 'sha256'), digest(join(dirname(dsc), f), 'sha256'), f);
    });

    it('builds an `any` package on every arch of the platform, and a listed one where it matches', async () => {
      await submitTo(farm, 'dsc-any', [buildDsc('everywhere', { architecture: 'any' })]);
      await submitTo(farm, 'dsc-arm', [buildDsc('armonly', { architecture: 'arm64' })]);
      const pass = await runIncomingPass(farm.ctx());
      const tasks = (id: string) => pass.outcomes.find((o) => o.job === id && o.kind === 'registered');
      assert.deepEqual(
        (tasks('dsc-any') as { targets: { platform: string; arch: string }[] }).targets.map((t) => t.arch),
        ['aarch64', 'x86_64'],
      );
      assert.deepEqual(
        (tasks('dsc-arm') as { targets: { platform: string; arch: string }[] }).targets.map((t) => t.arch),
        ['aarch64'],
      );
    });

    it('refuses at submission a .dsc whose listed file is missing or has another SHA-256, writing nothing', async () => {
      const alone = mkdtempSync(join(tmpdir(), 'pkgforge-dsc-alone-'));
      copyFileSync(dsc, join(alone, basename(dsc)));
      await assert.rejects(submitTo(farm, 'dsc-missing', [join(alone, basename(dsc))]), {
        code: 'PKGF_ERR_SOURCE_PACKAGE',
        message: `greeter_2.10-3.dsc lists ${parts[0]}, which is not beside it (${alone}) as a regular file`,
      });
      const changed = await copyOf(dsc, { file: parts[1]!, edit: flipLastByte });
      await assert.rejects(submitTo(farm, 'dsc-changed', [changed]), {
        code: 'PKGF_ERR_CHECKSUM',
        message: `greeter_2.10-3.dsc: ${parts[1]} does not have the SHA-256 it lists`,
      });
      // The sizes a .dsc lists meet the limits before any file is hashed: this one's content is wrong too.
      await assert.rejects(
        submitTo(farm, 'dsc-large', [changed], {
          limits: { maxPackageSize: 10 ** 9, maxJobSize: statSync(dsc).size + 1 },
        }),
        (err: Error & { code?: string }) =>
          err.code === 'PKGF_ERR_TOO_LARGE' &&
          /its 3 files are .* more than the farm accepts for one job/.test(err.message),
      );
      await assert.rejects(submitTo(farm, 'dsc-mixed', [srpm('hello'), dsc]), {
        code: 'PKGF_ERR_USAGE',
        message: 'A job holds one kind of source package: submit the SRPM and the DSC packages as separate jobs',
      });
      assert.deepEqual(
        readdirSync(farm.incoming).filter((n) => n.startsWith('dsc-') && n !== 'dsc-ok'),
        [],
      );
    });

    it('makes a job invalid, with the file named, when a listed file changes in incoming', async () => {
      await submitTo(farm, 'dsc-tampered', [dsc]);
      const path = join(farm.incoming, 'dsc-tampered', parts[0]!);
      writeFileSync(path, flipLastByte(readFileSync(path)));
      const pass = await runIncomingPass(farm.ctx({ waitForJobMs: 0 }));
      const outcome = pass.outcomes.find((o) => o.job === 'dsc-tampered');
      assert.equal(outcome?.kind, 'invalid', JSON.stringify(pass.outcomes));
      assert.match(
        outcome.reason,
        new RegExp(`^${parts[0]!.replaceAll('.', '\\.')}: the sha256sum does not match the manifest`),
      );
      assert.equal((await getJobDetail(farm.registry.db, 'dsc-tampered'))?.status, 'invalid');
    });

    it('makes a job invalid whose manifest leaves out, or changes, a file its .dsc lists', async () => {
      for (const [id, edit] of [
        ['dsc-short', (m: any) => m.packages[0].parts.pop()],
        ['dsc-resized', (m: any) => (m.packages[0].parts[0].size += 1)],
      ] as const) {
        await submitTo(farm, id, [dsc]);
        const file = join(farm.incoming, id, 'build.yml');
        const m = YAML.parse(readFileSync(file, 'utf8'));
        edit(m);
        writeFileSync(file, YAML.stringify(m));
      }
      const pass = await runIncomingPass(farm.ctx({ waitForJobMs: 0 }));
      const short = pass.outcomes.find((o) => o.job === 'dsc-short');
      assert.equal(short?.kind, 'invalid', JSON.stringify(pass.outcomes));
      assert.equal(
        short.reason,
        `greeter_2.10-3.dsc: the manifest's files for it (${parts[0]}) are not the ones it lists (${parts.join(', ')}) with their sizes and SHA-256`,
      );
      const resized = pass.outcomes.find((o) => o.job === 'dsc-resized');
      assert.equal(resized?.kind, 'invalid', JSON.stringify(pass.outcomes));
    });

    it("takes into a bucket with a keyring only .dsc files signed by one of its keys, saying why not in gpgv's words", async () => {
      const signer = makeSigningKey('Trusted Uploader <up@example.org>');
      const stranger = makeSigningKey('Someone Else <else@example.org>');
      const keyring = join(farm.root, 'uploaders.gpg');
      writeFileSync(keyring, execFileSync('gpg', ['--homedir', signer.home, '--export']));
      const signedBy = async (home: string) => {
        const copy = await copyOf(dsc);
        writeFileSync(copy, clearsign(copy, home));
        return copy;
      };
      await submitTo(farm, 'sig-good', [await signedBy(signer.home)], { bucket: 'signed' });
      await submitTo(farm, 'sig-stranger', [await signedBy(stranger.home)], { bucket: 'signed' });
      await submitTo(farm, 'sig-none', [dsc], { bucket: 'signed' });
      await submitTo(farm, 'sig-elsewhere', [dsc], { bucket: 'devel' });
      const pass = await runIncomingPass(farm.ctx({ dscKeyrings: { signed: keyring } }));
      const kind = (id: string) => pass.outcomes.find((o) => o.job === id);
      assert.equal(kind('sig-good')?.kind, 'registered', JSON.stringify(pass.outcomes));
      assert.equal(kind('sig-elsewhere')?.kind, 'registered', JSON.stringify(pass.outcomes));
      const stranger_ = kind('sig-stranger');
      assert.equal(stranger_?.kind, 'invalid');
      assert.equal(
        stranger_.reason,
        `greeter_2.10-3.dsc: bucket signed takes only .dsc files signed by a key in ${keyring}: Can't check signature: No public key`,
      );
      const none = kind('sig-none');
      assert.equal(none?.kind, 'invalid');
      assert.match(
        none.reason,
        /bucket signed takes only \.dsc files signed by a key in .*: no valid OpenPGP data found/,
      );
    });

    it('registers a .dsc job with no task, and says why, when the farm has no Debian platform for it', async () => {
      await submitTo(farm, 'dsc-nowhere', [dsc], { platforms: ['el9'] });
      const pass = await runIncomingPass(farm.ctx());
      const outcome = pass.outcomes.find((o) => o.job === 'dsc-nowhere');
      assert.equal(outcome?.kind, 'registered', JSON.stringify(pass.outcomes));
      assert.deepEqual(outcome.targets, []);
      // What the job page and the API say about it.
      const job = (await getJobDetail(farm.registry.db, 'dsc-nowhere'))!;
      assert.deepEqual(filterWarnings(job, await listPlatforms(farm.registry.db)), [
        "platform 'el9' builds rpm packages, and this job's are deb",
      ]);
    });
  });
}
