import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { CreaterepoPublisher } from '../../src/buildd/commands/createrepo.ts';
import { runBuildd } from '../../src/buildd/daemon.ts';
import type { AttemptRun } from '../../src/buildd/phases.ts';
import { builddSettings } from '../../src/buildd/setup.ts';
import { exportPublicKey, farmSigningKey } from '../../src/buildd/signing-key.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { createToken } from '../../src/registry/tokens.ts';
import { silentLog } from '../../src/util/log.ts';
import { stopAgentAtExit } from '../helpers/dsc.ts';
import { addPlatforms, farmEnv, makeFarm, pkgforge, submitTo, type TestFarm } from '../helpers/farm.ts';
import { buildRpm, specFor, srpm } from '../helpers/srpm.ts';
import { farmApp } from '../helpers/web.ts';

const run = promisify(execFile);
const never = new AbortController().signal;

describe('repositories over HTTP: a real dnf installs a signed package the farm built, from the served .repo file', () => {
  let farm: TestFarm;
  let app: FastifyInstance;
  let base: string;
  let repos: string;
  let gnupg: string;
  before(async () => {
    farm = await makeFarm('sqlite');
    repos = join(farm.root, 'repos');
    gnupg = join(farm.root, 'gnupg');
    stopAgentAtExit(gnupg);
    await addPlatforms(farm, 'el9/x86_64*');
    await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
    await submitTo(farm, 'signed', [srpm('hello')]);
    assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
    const settings = builddSettings(
      loadConfig({
        files: [],
        env: { PKGFORGE_HOME: farm.root, HOME: farm.root },
        overrides: { repos, sandbox_dir: farm.builds, signers: ['rpmsign'], gnupg_home: gnupg },
      }),
    );
    const [report] = await runBuildd(
      {
        registry: farm.registry,
        name: 'b1',
        dirs: { accepted: farm.accepted, results: farm.results, tmpdir: join(farm.root, 'tmp') },
        settings,
        log: silentLog,
      },
      { once: true, stop: never, abort: never },
    );
    assert.equal(report?.status, 'success', report?.reason ?? '');
    app = await farmApp(farm);
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app?.close();
    await farm?.dispose();
  });

  it('serves a .repo file naming the farm, with gpgcheck on and the key served beside the packages', async () => {
    const r = await fetch(`${base}/repos/devel/el9-x86_64.repo`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    const text = await r.text();
    assert.match(text, /^\[pkgforge-devel-el9-x86_64\]$/m);
    assert.match(text, new RegExp(`^baseurl=${base}/repos/devel/el9/x86_64$`, 'm'));
    assert.match(text, /^gpgcheck=1$/m);
    assert.match(text, new RegExp(`^gpgkey=${base}/repos/devel/el9/x86_64/RPM-GPG-KEY-pkgforge$`, 'm'));
    const key = await fetch(`${base}/repos/devel/el9/x86_64/RPM-GPG-KEY-pkgforge`);
    assert.equal(key.headers.get('content-type'), 'application/pgp-keys');
    assert.equal(await key.text(), await exportPublicKey(await farmSigningKey(gnupg, null)));
    // The API says the same, for tools.
    const api = (await (await fetch(`${base}/api/v1/buckets/devel/repositories`)).json()) as {
      yum: { id: string; text: string; signed: boolean }[];
    };
    assert.deepEqual(
      api.yum.map((y) => [y.id, y.signed, y.text]),
      [['pkgforge-devel-el9-x86_64', true, text]],
    );
    assert.equal((await fetch(`${base}/repos/devel/el8-x86_64.repo`)).status, 404);
    assert.equal((await fetch(`${base}/repos/nobucket/el9-x86_64.repo`)).status, 404);
  });

  it('dnf installs the package over HTTP with gpgcheck=1, and refuses it when the key is not the signer', async () => {
    const client = join(farm.root, 'dnf-client');
    const reposd = join(client, 'yum.repos.d');
    mkdirSync(reposd, { recursive: true });
    writeFileSync(join(reposd, 'pkgforge.repo'), await (await fetch(`${base}/repos/devel/el9-x86_64.repo`)).text());
    const dnf = async (root: string) => {
      mkdirSync(join(root, 'var', 'log'), { recursive: true }); // dnf fails without its log directory
      return run('dnf', [
        '-y',
        '-q',
        `--installroot=${root}`,
        '--releasever=1',
        `--setopt=reposdir=${reposd}`,
        `--setopt=cachedir=${join(client, 'cache')}`,
        '--setopt=install_weak_deps=0',
        'install',
        'hello',
      ]).then(
        () => null,
        (err: { stderr: string; stdout: string }) => `${err.stdout}${err.stderr}`,
      );
    };
    const root = join(client, 'root');
    assert.equal(await dnf(root), null);
    assert.equal(readFileSync(join(root, 'usr', 'share', 'hello', 'README'), 'utf8'), 'hello\n');
    const { stdout } = await run('rpm', ['--root', root, '-q', 'hello']);
    assert.equal(stdout.trim(), 'hello-1.0-1.noarch');

    // A repository whose published key is another one: dnf must refuse the package.
    const other = join(farm.root, 'other-gnupg');
    stopAgentAtExit(other);
    const wrong = await exportPublicKey(await farmSigningKey(other, null));
    const keyFile = join(repos, 'devel', 'el9', 'x86_64', 'RPM-GPG-KEY-pkgforge');
    const right = readFileSync(keyFile, 'utf8');
    writeFileSync(keyFile, wrong);
    try {
      const refused = await dnf(join(client, 'root2'));
      assert.ok(refused !== null, 'dnf installed a package signed with a key it was not given');
      assert.match(refused, /GPG|key|signature/i);
      assert.ok(!existsSync(join(client, 'root2', 'usr', 'share', 'hello', 'README')));
    } finally {
      writeFileSync(keyFile, right);
    }
  });

  it('serves files as static files: content types, ETag and 304, ranges, and never anything outside or hidden', async () => {
    const rpm = `${base}/repos/devel/el9/x86_64/hello-1.0-1.noarch.rpm`;
    const whole = await fetch(rpm);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get('content-type'), 'application/x-rpm');
    const bytes = Buffer.from(await whole.arrayBuffer());
    assert.deepEqual(bytes, readFileSync(join(repos, 'devel', 'el9', 'x86_64', 'hello-1.0-1.noarch.rpm')));
    const etag = whole.headers.get('etag')!;
    assert.ok(etag && whole.headers.get('last-modified'));
    // fetch() makes a conditional request uncached (Cache-Control: no-cache), as a reload; dnf does not.
    const path = '/repos/devel/el9/x86_64/hello-1.0-1.noarch.rpm';
    assert.equal((await app.inject({ method: 'GET', url: path, headers: { 'if-none-match': etag } })).statusCode, 304);
    const part = await fetch(rpm, { headers: { range: 'bytes=4-99' } });
    assert.equal(part.status, 206);
    assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(4, 100));
    const repomd = await fetch(`${base}/repos/devel/el9/x86_64/repodata/repomd.xml`);
    assert.equal(repomd.status, 200);
    assert.equal(repomd.headers.get('content-type'), 'application/xml');
    assert.equal(repomd.headers.get('cache-control'), 'no-cache');

    // What is never served: reprepro's own files, dot files (locks, copies in progress, the
    // metadata generations but through repodata), anything outside repos/, directory listings.
    mkdirSync(join(repos, 'devel', 'deb', 'conf'), { recursive: true });
    writeFileSync(join(repos, 'devel', 'deb', 'conf', 'distributions'), 'Codename: x\n');
    writeFileSync(join(repos, 'devel', 'el9', 'x86_64', '.hello.rpm.tmp'), 'HALF-COPIED');
    writeFileSync(join(farm.root, 'secret'), 'TOP-SECRET-CONTENT');
    // Links are followed by the file server: where they lead must pass the same rules.
    const arch = join(repos, 'devel', 'el9', 'x86_64');
    symlinkSync(join(farm.root, 'secret'), join(arch, 'outside.rpm'));
    symlinkSync('../../../../secret', join(arch, 'relative.rpm'));
    symlinkSync(farm.root, join(arch, 'outside-dir'));
    mkdirSync(join(repos, 'devel', 'deb', 'pool'), { recursive: true });
    symlinkSync('../conf/distributions', join(repos, 'devel', 'deb', 'pool', 'conf-alias'));
    symlinkSync('../.hello.rpm.tmp', join(arch, 'repodata-x').replace('repodata-x', 'tmp-alias.rpm'));
    const generation = readlinkSync(join(repos, 'devel', 'el9', 'x86_64', 'repodata')).split('/')[0];
    for (const path of [
      '/repos/devel/deb/conf/distributions',
      '/repos/devel/el9/x86_64/.hello.rpm.tmp',
      '/repos/devel/el9/x86_64/.publish.lock',
      `/repos/devel/el9/x86_64/${generation}/repodata/repomd.xml`,
      '/repos/../secret',
      '/repos/%2e%2e/secret',
      '/repos/devel/..%2f..%2fsecret',
      '/repos/devel/el9/x86_64/',
      '/repos/devel/el9/x86_64/repodata/',
      '/repos/devel/el9/x86_64/outside.rpm',
      '/repos/devel/el9/x86_64/relative.rpm',
      '/repos/devel/el9/x86_64/outside-dir/secret',
      '/repos/devel/deb/pool/conf-alias',
      '/repos/devel/el9/x86_64/tmp-alias.rpm',
    ]) {
      const r = await fetch(`${base}${path}`);
      assert.ok(r.status === 404 || r.status === 403 || r.status === 400, `${path}: ${r.status}`);
      assert.doesNotMatch(await r.text(), /TOP-SECRET|Codename: x|HALF-COPIED/, path);
    }
  });

  it('a reader never sees missing or half-written metadata while packages are published', async () => {
    const repo = join(repos, 'devel', 'el9', 'x86_64');
    const publisher = new CreaterepoPublisher(repos);
    const log = createWriteStream(join(farm.root, 'publish.log'));
    let publishing = true;
    const failures: string[] = [];
    let reads = 0;
    // Reads the index and then every file it names, as dnf does, until the publishing is over.
    const reader = (async () => {
      while (publishing) {
        const r = await fetch(`${base}/repos/devel/el9/x86_64/repodata/repomd.xml`);
        if (r.status !== 200) {
          failures.push(`repomd.xml: ${r.status}`);
          continue;
        }
        const xml = await r.text();
        for (const [, href] of xml.matchAll(/<location href="([^"]+)"/g)) {
          const f = await fetch(`${base}/repos/devel/el9/x86_64/${href}`);
          if (f.status !== 200) failures.push(`${href}: ${f.status}`);
          await f.arrayBuffer();
        }
        reads++;
      }
    })();
    try {
      for (let i = 1; i <= 6; i++) {
        const rpm = buildRpm(specFor(`pkg${i}`), 'binary');
        await publisher.run({
          claim: { bucket: 'devel', platform: 'el9', arch: 'x86_64', jobId: `p${i}`, attempt: 1 },
          info: { products: [rpm], phases: [] },
          log,
          signal: never,
        } as unknown as AttemptRun);
        // Each publish lets the reader through at least once more.
        const seen = reads;
        while (reads === seen && failures.length === 0) await new Promise((r) => setImmediate(r));
      }
    } finally {
      publishing = false;
      await reader;
      log.end();
    }
    assert.deepEqual(failures, []);
    const xml = readFileSync(join(repo, 'repodata', 'repomd.xml'), 'utf8');
    assert.match(xml, /primary\.xml/);
  });

  it('with read_requires_token, the repositories and pages need a token, which dnf, apt and browsers send as a basic-auth password', async () => {
    const closed = await farmApp(farm, { readRequiresToken: true });
    try {
      const url = '/repos/devel/el9/x86_64/repodata/repomd.xml';
      const none = await closed.inject({ method: 'GET', url });
      assert.equal(none.statusCode, 401);
      assert.match(String(none.headers['www-authenticate']), /^Basic /);
      const { token } = await createToken(farm.registry.db, 'alice');
      const basic = Buffer.from(`anyone:${token}`).toString('base64');
      assert.equal(
        (await closed.inject({ method: 'GET', url, headers: { authorization: `Basic ${basic}` } })).statusCode,
        200,
      );
      const wrong = Buffer.from('anyone:nope').toString('base64');
      assert.equal(
        (await closed.inject({ method: 'GET', url, headers: { authorization: `Basic ${wrong}` } })).statusCode,
        401,
      );
      assert.equal((await closed.inject({ method: 'GET', url: '/repos/devel/el9-x86_64.repo' })).statusCode, 401);
      // The pages too: a browser asks for the token (any user name) after the challenge.
      for (const page of ['/', '/queue', '/jobs/signed', '/buckets/devel', '/packages/hello']) {
        const open = await closed.inject({ method: 'GET', url: page });
        assert.equal(open.statusCode, 401, page);
        assert.match(String(open.headers['www-authenticate']), /^Basic /);
        assert.equal(
          (await closed.inject({ method: 'GET', url: page, headers: { authorization: `Basic ${basic}` } })).statusCode,
          200,
          page,
        );
      }
    } finally {
      await closed.close();
    }
  });

  it("shows what a bucket publishes now, with each repository's packages and lines, on its page and in the API", async () => {
    const api = (await (await fetch(`${base}/api/v1/buckets/devel`)).json()) as {
      yum: {
        platform: string;
        arch: string;
        signed: boolean;
        packages: { name: string; version: string; arch: string }[];
      }[];
    };
    const [el9] = api.yum;
    assert.equal(el9?.platform, 'el9');
    assert.equal(el9.signed, true);
    const hello = el9.packages.find((p) => p.name === 'hello');
    assert.deepEqual(hello && [hello.version, hello.arch], ['1.0-1', 'noarch']);
    const page = await (await fetch(`${base}/buckets/devel`)).text();
    assert.match(page, /<h1>Bucket devel<\/h1>/);
    assert.match(
      page,
      new RegExp(`curl -o /etc/yum.repos.d/pkgforge-devel-el9-x86_64.repo ${base}/repos/devel/el9-x86_64.repo`),
    );
    assert.match(page, new RegExp(`href="${base}/repos/devel/el9/x86_64/hello-1.0-1.noarch.rpm">1.0-1</a>`));
    assert.equal((await fetch(`${base}/buckets/nothing`)).status, 404);
    assert.equal((await fetch(`${base}/api/v1/buckets/nothing`)).status, 404);
    assert.equal((await fetch(`${base}/buckets/..%2Fetc`)).status, 404);
  });

  it('pkgforge repo show prints the same .repo file at public_url, or the paths on this host without it', async () => {
    const cfg = join(farm.root, 'public.yml');
    writeFileSync(cfg, 'public_url: https://farm.example.org/pkgforge/\n');
    const shown = await pkgforge(['repo', 'show', 'devel', '-c', cfg], farmEnv(farm));
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^# \/etc\/yum.repos.d\/pkgforge-devel-el9-x86_64.repo$/m);
    assert.match(shown.stdout, /^baseurl=https:\/\/farm.example.org\/pkgforge\/repos\/devel\/el9\/x86_64$/m);
    assert.match(
      shown.stdout,
      /^gpgkey=https:\/\/farm.example.org\/pkgforge\/repos\/devel\/el9\/x86_64\/RPM-GPG-KEY-pkgforge$/m,
    );
    const local = await pkgforge(['repo', 'show', 'devel'], farmEnv(farm));
    assert.equal(local.code, 0, local.stderr);
    assert.match(local.stdout, new RegExp(`^baseurl=file://${repos}/devel/el9/x86_64$`, 'm'));
    assert.match(local.stderr, /public_url is not set/);
    const none = await pkgforge(['repo', 'show', 'empty'], farmEnv(farm));
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /Nothing has been published into bucket empty yet/);
    const bad = await pkgforge(['repo', 'show', '../etc'], farmEnv(farm));
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /'..\/etc' is not a bucket name/);
  });
});
