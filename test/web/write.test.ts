import assert from 'node:assert/strict';
import { mkdtempSync, openAsBlob, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import YAML from 'yaml';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { createToken, revokeToken } from '../../src/registry/tokens.ts';
import { validateDsc } from '../../src/sources/dsc.ts';
import { addPlatforms, makeFarm, pkgforge, spawnPkgforge, type TestFarm } from '../helpers/farm.ts';
import { buildDsc } from '../helpers/dsc.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { srpm } from '../helpers/srpm.ts';
import { farmApp } from '../helpers/web.ts';

for (const dialect of DIALECTS) {
  describe(`writing over HTTP on ${dialect}`, () => {
    let farm: TestFarm;
    let app: FastifyInstance;
    let base: string;
    let token: string;
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*', 'f40/x86_64*');
      token = (await createToken(farm.registry.db, 'alice')).token;
      app = await farmApp(farm, { uploadMaxBytes: 64 * 1024 });
      base = await app.listen({ host: '127.0.0.1', port: 0 });
    });
    after(async () => {
      await app.close();
      await farm.dispose();
    });

    async function upload(files: string[], fields: Record<string, string> = { bucket: 'devel' }, auth = token) {
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      for (const f of files) form.append('file', await openAsBlob(f), basename(f));
      const r = await fetch(`${base}/api/v1/jobs`, {
        method: 'POST',
        body: form,
        headers: auth ? { authorization: `Bearer ${auth}` } : {},
      });
      return { status: r.status, body: (await r.json()) as any };
    }

    it("takes an upload into incoming, with the token's user as submitter, for the processor to register", async () => {
      const r = await upload([srpm('hello'), srpm('world', { buildRequires: ['hello'] })], {
        bucket: 'devel',
        platforms: 'el9',
        report: 'rel@example.org',
        id: 'up-1',
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.deepEqual(r.body, {
        id: 'up-1',
        url: '/api/v1/jobs/up-1',
        packages: ['hello-1.0-1.src.rpm', 'world-1.0-1.src.rpm'],
      });
      const manifest = YAML.parse(readFileSync(join(farm.incoming, 'up-1', 'build.yml'), 'utf8'));
      assert.equal(manifest.submitter, 'alice');
      assert.deepEqual(manifest.platforms, ['el9']);
      assert.equal(manifest.packages[0].sha256sum.length, 64);
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      const job = (await getJobDetail(farm.registry.db, 'up-1'))!;
      assert.deepEqual(
        job.tasks.map((t) => t.platform),
        ['el9'],
      );
    });

    it('takes a .dsc and then each file it lists, and refuses a listed file that is missing, changed or sent first', async () => {
      await addPlatforms(farm, 'deb12/x86_64*');
      const dsc = buildDsc('uploaded');
      const parts = (await validateDsc(dsc)).parts.map((p) => join(dirname(dsc), p.file));
      const ok = await upload([dsc, ...parts], { bucket: 'devel', id: 'up-dsc' });
      assert.equal(ok.status, 201, JSON.stringify(ok.body));
      assert.deepEqual(ok.body.packages, ['uploaded_1.0-1.dsc']);
      const manifest = YAML.parse(readFileSync(join(farm.incoming, 'up-dsc', 'build.yml'), 'utf8'));
      assert.deepEqual(
        manifest.packages[0].parts.map((p: { file: string }) => p.file),
        parts.map((p) => basename(p)),
      );
      assert.equal((await runIncomingPass(farm.ctx())).outcomes.find((o) => o.job === 'up-dsc')?.kind, 'registered');
      assert.deepEqual(
        (await getJobDetail(farm.registry.db, 'up-dsc'))!.tasks.map((t) => t.platform),
        ['deb12'],
      );
      const changed = join(mkdtempSync(join(tmpdir(), 'pkgforge-changed-')), basename(parts[0]!));
      const bytes = readFileSync(parts[0]!);
      writeFileSync(changed, Buffer.concat([bytes.subarray(0, -1), Buffer.from([bytes.at(-1)! ^ 1])]));
      const cases: [string[], number, string, RegExp][] = [
        [[dsc, parts[0]!], 400, 'PKGF_ERR_SOURCE_PACKAGE', /uploaded_1\.0-1\.dsc lists .*, which was not uploaded/],
        [
          [parts[0]!, dsc],
          400,
          'PKGF_ERR_SOURCE_PACKAGE',
          /is neither a source package nor a file that a \.dsc sent before it lists/,
        ],
        [
          [dsc, changed, parts[1]!],
          400,
          'PKGF_ERR_CHECKSUM',
          /does not have the size and SHA-256 uploaded_1\.0-1\.dsc lists/,
        ],
        [[srpm('hello'), dsc, ...parts], 400, 'PKGF_ERR_MANIFEST', /a job holds one kind of source package/],
      ];
      for (const [files, status, code, message] of cases) {
        const r = await upload(files, { bucket: 'devel', id: 'up-dsc-bad' });
        assert.deepEqual([r.status, r.body.code], [status, code], JSON.stringify(r.body));
        assert.match(r.body.message, message);
      }
      assert.deepEqual(
        readdirSync(farm.incoming).filter((n) => n.includes('up-dsc-bad')),
        [],
      );
    });

    it('refuses writes without a valid token', async () => {
      assert.equal((await upload([srpm('hello')], { bucket: 'devel' }, '')).status, 401);
      assert.equal((await upload([srpm('hello')], { bucket: 'devel' }, 'pkgf_wrong')).status, 401);
      const { id, token: revoked } = await createToken(farm.registry.db, 'bob');
      await revokeToken(farm.registry.db, id);
      const r = await upload([srpm('hello')], { bucket: 'devel' }, revoked);
      assert.equal(r.status, 401);
      assert.equal(r.body.code, 'PKGF_ERR_AUTH');
      assert.deepEqual(readdirSync(farm.incoming), []);
    });

    it('refuses bad uploads with the status and code of each fault, and leaves nothing in incoming', async () => {
      // A job of its own whose id the reused-id case takes again.
      assert.equal((await upload([srpm('hello')], { bucket: 'devel', id: 'taken' })).status, 201);
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      const fake = join(farm.root, 'fake-1-1.src.rpm');
      writeFileSync(fake, 'not an rpm');
      const big = join(farm.root, 'big-1-1.src.rpm');
      writeFileSync(big, Buffer.alloc(100 * 1024, 1));
      const cases: [string, Promise<{ status: number; body: any }>, number, string, RegExp][] = [
        ['not an RPM', upload([fake]), 400, 'PKGF_ERR_SOURCE_PACKAGE', /^fake-1-1\.src\.rpm: not a valid RPM/],
        ['no bucket', upload([srpm('hello')], {}), 400, 'PKGF_ERR_MANIFEST', /: bucket: /],
        ['no packages', upload([], { bucket: 'devel' }), 400, 'PKGF_ERR_USAGE', /^No packages/],
        [
          'a path as id',
          upload([srpm('hello')], { bucket: 'devel', id: '../../etc' }),
          400,
          'PKGF_ERR_INVALID_NAME',
          /^Invalid job id '\.\.\/\.\.\/etc'/,
        ],
        [
          'a reused id',
          upload([srpm('hello')], { bucket: 'devel', id: 'taken' }),
          409,
          'PKGF_ERR_JOB_ID',
          /A job with ID taken has been previously registered; choose another id/,
        ],
        [
          'a bad report address',
          upload([srpm('hello')], { bucket: 'devel', report: 'not an address' }),
          400,
          'PKGF_ERR_MANIFEST',
          /report address 'not an address' is not a valid e-mail address/,
        ],
        [
          'a file over upload_max_bytes',
          upload([big]),
          413,
          'PKGF_ERR_TOO_LARGE',
          /^big-1-1\.src\.rpm is larger than the upload limit of 65536 bytes/,
        ],
        [
          'an unknown field',
          upload([srpm('hello')], { bucket: 'devel', colour: 'red' }),
          400,
          'PKGF_ERR_USAGE',
          /^Unknown field 'colour'/,
        ],
      ];
      for (const [label, pending, status, code, message] of cases) {
        const r = await pending;
        assert.deepEqual([r.status, r.body.code], [status, code], `${label}: ${r.status} ${JSON.stringify(r.body)}`);
        assert.match(r.body.message, message, label);
      }
      assert.deepEqual(readdirSync(farm.incoming), []);
    });

    it("cancels and retries a job's tasks", async () => {
      const post = async (path: string, body: unknown = {}) => {
        const r = await fetch(`${base}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        return { status: r.status, body: (await r.json()) as any };
      };
      await upload([srpm('hello')], { bucket: 'devel', id: 'steer' });
      await runIncomingPass(farm.ctx());
      const cancelled = await post('/api/v1/jobs/steer/cancel', { platform: 'f40' });
      assert.equal(cancelled.status, 200);
      assert.deepEqual(cancelled.body.cancelled, [{ platform: 'f40', arch: 'x86_64', wasRunning: false }]);
      const job = (await getJobDetail(farm.registry.db, 'steer'))!;
      assert.equal(job.tasks.find((t) => t.platform === 'f40')?.reason, 'cancelled by alice');
      assert.deepEqual((await post('/api/v1/jobs/steer/retry')).body.retried, [{ platform: 'f40', arch: 'x86_64' }]);
      const missing = await post('/api/v1/jobs/nope/cancel');
      assert.deepEqual([missing.status, missing.body.code], [404, 'PKGF_ERR_NOT_FOUND']);
      const anonymous = await fetch(`${base}/api/v1/jobs/steer/cancel`, { method: 'POST' });
      assert.deepEqual([anonymous.status, ((await anonymous.json()) as any).code], [401, 'PKGF_ERR_AUTH']);
    });
  });
}

describe('reading can require a token', () => {
  it('answers 401 to reads without one when configured so', async () => {
    const farm = await makeFarm('sqlite');
    const app = await farmApp(farm, { uploadMaxBytes: 1024, readRequiresToken: true });
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/api/v1/jobs' })).statusCode, 401);
      const { token } = await createToken(farm.registry.db, 'carol');
      assert.equal(
        (await app.inject({ method: 'GET', url: '/api/v1/jobs', headers: { authorization: `Bearer ${token}` } }))
          .statusCode,
        200,
      );
    } finally {
      await app.close();
      await farm.dispose();
    }
  });
});

describe('the CLI against a remote server', () => {
  it('submits with --server and follows a log with logs --server', async () => {
    const { builderIdentity, claimNextTask, finishAttempt } = await import('../../src/registry/attempts.ts');
    const { addBuilder } = await import('../../src/registry/builders.ts');
    const { mkdirSync } = await import('node:fs');
    const farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*');
    await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
    const app = await farmApp(farm);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { token } = await createToken(farm.registry.db, 'dave');
      // A client with no access to the farm's directories: its own empty PKGFORGE_HOME.
      const env = { PKGFORGE_HOME: join(farm.root, 'client'), HOME: join(farm.root, 'client'), PKGFORGE_TOKEN: token };
      const noToken = await pkgforge(['submit', '--server', base, '--bucket', 'devel', srpm('hello')], {
        PKGFORGE_HOME: join(farm.root, 'client'),
        HOME: join(farm.root, 'client'),
      });
      assert.equal(noToken.code, 1);
      assert.match(noToken.stderr, /needs an API token/);
      const r = await pkgforge(
        ['submit', '--server', base, '--bucket', 'devel', '--id', 'remote-1', '--json', srpm('hello')],
        env,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).url, `${base}/api/v1/jobs/remote-1`);
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      // A .dsc goes with every file it lists.
      const dsc = await pkgforge(
        ['submit', '--server', base, '--bucket', 'devel', '--id', 'remote-dsc', '--json', buildDsc('remote')],
        env,
      );
      assert.equal(dsc.code, 0, dsc.stderr);
      assert.deepEqual(readdirSync(join(farm.incoming, 'remote-dsc')).sort(), [
        'build.yml',
        'remote_1.0-1.debian.tar.xz',
        'remote_1.0-1.dsc',
        'remote_1.0.orig.tar.gz',
      ]);

      const claim = (await claimNextTask(
        farm.registry,
        (await builderIdentity(farm.registry.db, 'b1'))!,
        'h[1]',
        60_000,
      ))!;
      const dir = join(farm.results, 'remote-1', 'el9-x86_64', 'attempt-1');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'build.log'), 'compiling\nlinking\n');
      const following = spawnPkgforge(
        ['logs', 'remote-1', '--server', base, '--platform', 'el9', '--arch', 'x86_64'],
        env,
      );
      // The log so far arrives while the attempt still runs; only then does the attempt end, which ends the stream.
      await following.until(/linking\n/);
      await finishAttempt(farm.registry, claim, 'success', null, null);
      writeFileSync(join(dir, 'buildinfo.yml'), 'completed: 1\n');
      assert.equal(await following.exited, 0, following.output());
      assert.equal(following.stdout(), 'compiling\nlinking\n');
    } finally {
      await app.close();
      await farm.dispose();
    }
  });
});
