import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { RepreproPublisher } from '../../src/buildd/commands/reprepro.ts';
import type { AttemptRun } from '../../src/buildd/phases.ts';
import { exportPublicKey, farmSigningKey, type SigningKey } from '../../src/buildd/signing-key.ts';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { insertJob } from '../../src/registry/jobs.ts';
import { registerTasks } from '../../src/registry/tasks.ts';
import { aptClient, downloadAndUnpack } from '../helpers/apt.ts';
import { buildDeb, stopAgentAtExit } from '../helpers/dsc.ts';
import { addPlatforms, makeFarm, type TestFarm } from '../helpers/farm.ts';
import { farmApp } from '../helpers/web.ts';

describe("a bucket's APT repository on the web: its lines, its key, and the job page's instructions", () => {
  let farm: TestFarm;
  let app: FastifyInstance;
  let key: SigningKey;
  before(async () => {
    farm = await makeFarm('sqlite');
    stopAgentAtExit(join(farm.root, 'gnupg'));
    key = await farmSigningKey(join(farm.root, 'gnupg'), null);
    await addPlatforms(farm, 'deb12/x86_64*', 'deb13/x86_64');
    // What a build daemon's reprepro publisher leaves after building a package for deb12.
    const log = createWriteStream(join(farm.root, 'publish.log'));
    await new RepreproPublisher(join(farm.root, 'repos'), async () => key).run({
      claim: { bucket: 'devel', platform: 'deb12', arch: 'x86_64', jobId: 'tiny', attempt: 1 },
      info: { products: [buildDeb('tiny', '1.0-1')], phases: [] },
      log,
      signal: new AbortController().signal,
    } as unknown as AttemptRun);
    log.end();
    const m = normaliseManifest(
      {
        id: 'tiny',
        bucket: 'devel',
        packages: [
          {
            file: 'tiny_1.0-1.dsc',
            type: 'DSC',
            size: 10,
            sha1sum: 'a'.repeat(40),
            parts: [{ file: 'tiny_1.0.orig.tar.gz', size: 1, sha256sum: 'b'.repeat(64) }],
          },
        ],
      },
      'tiny',
    );
    await insertJob(farm.registry, m, { submitter: 'alice', submittedAt: Date.now(), incomingEntry: null });
    await registerTasks(farm.registry, 'tiny', m.platforms, m.archs, 'deb');
    app = await farmApp(farm);
  });
  after(async () => {
    await app?.close();
    await farm?.dispose();
  });

  it("gives the sources line of each platform's suite, and serves the key that signs them", async () => {
    const r = await app.inject({ method: 'GET', url: '/api/v1/buckets/devel/apt' });
    assert.equal(r.statusCode, 200, r.body);
    // Under the address the request was made to (inject's is localhost:80), served by the web server.
    const repo = 'http://localhost:80/repos/devel/deb';
    assert.deepEqual(r.json(), {
      bucket: 'devel',
      url: repo,
      key: '/api/v1/buckets/devel/apt/key.asc',
      keyUrl: `${repo}/key.asc`,
      keyPath: '/etc/apt/keyrings/pkgforge-devel.asc',
      suites: [{ platform: 'deb12', line: `deb [signed-by=/etc/apt/keyrings/pkgforge-devel.asc] ${repo} deb12 main` }],
    });
    const served = await app.inject({ method: 'GET', url: '/repos/devel/deb/key.asc' });
    assert.equal(served.body, await exportPublicKey(key));
    const k = await app.inject({ method: 'GET', url: '/api/v1/buckets/devel/apt/key.asc' });
    assert.equal(k.statusCode, 200);
    assert.equal(k.headers['content-type'], 'application/pgp-keys');
    assert.equal(k.body, await exportPublicKey(key));
  });

  it("lists the APT suite's packages on the bucket's page and in the API", async () => {
    const api = (await app.inject({ method: 'GET', url: '/api/v1/buckets/devel' })).json();
    assert.deepEqual(api.yum, []);
    assert.deepEqual(
      api.apt.suites.map((s: { platform: string; packages: { name: string; version: string }[] }) => [
        s.platform,
        s.packages.map((p) => `${p.name} ${p.version}`),
      ]),
      [['deb12', ['tiny 1.0-1']]],
    );
    const page = (await app.inject({ method: 'GET', url: '/buckets/devel' })).body;
    assert.match(page, /<h2>APT repository/);
    assert.match(page, /<td>tiny<\/td><td>1.0-1<\/td>/);
  });

  it('a real apt installs the package over HTTP, with the key and line the server gives', async () => {
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    const repo = (await (await fetch(`${base}/api/v1/buckets/devel/apt`)).json()) as {
      keyUrl: string;
      suites: { line: string }[];
    };
    const keyFile = join(farm.root, 'served-key.asc');
    writeFileSync(keyFile, await (await fetch(repo.keyUrl)).text());
    // The line names the user's keyring path; the client keeps its key elsewhere.
    const line = repo.suites[0]!.line.replace('/etc/apt/keyrings/pkgforge-devel.asc', keyFile);
    assert.match(line, new RegExp(`^deb \\[signed-by=\\S+\\] ${base}/repos/devel/deb deb12 main$`));
    const client = await aptClient(farm.root, line);
    assert.doesNotMatch(client.update, /^(W|E):/m, client.update);
    const unpacked = await downloadAndUnpack(client, 'tiny');
    assert.equal(execFileSync(join(unpacked, 'usr', 'bin', 'tiny'), { encoding: 'utf8' }).trim(), 'Hello from tiny');
  });

  it('answers 404 for a bucket with nothing published, and 400 for a name that is no bucket', async () => {
    const none = await app.inject({ method: 'GET', url: '/api/v1/buckets/empty/apt' });
    assert.equal(none.statusCode, 404);
    assert.match(none.json().message, /Nothing has been published into an APT repository of bucket empty/);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/buckets/empty/apt/key.asc' })).statusCode, 404);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/buckets/..%2Fetc/apt' })).statusCode, 400);
  });

  it("shows a Debian job's page how to install its packages with apt, for its platforms", async () => {
    const r = await app.inject({ method: 'GET', url: '/jobs/tiny', headers: { host: 'farm.example.org:8080' } });
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /<h2>Install with apt<\/h2>/);
    assert.match(
      r.body,
      /curl -o \/etc\/apt\/keyrings\/pkgforge-devel.asc http:\/\/farm.example.org:8080\/repos\/devel\/deb\/key.asc/,
    );
    assert.match(
      r.body,
      /\necho &#39;deb \[signed-by=\/etc\/apt\/keyrings\/pkgforge-devel.asc\] http:\/\/farm.example.org:8080\/repos\/devel\/deb deb12 main&#39; &gt;&gt; \/etc\/apt\/sources.list.d\/pkgforge-devel.list\napt update</,
    );
  });
});
