import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RepreproPublisher } from '../../src/buildd/commands/reprepro.ts';
import type { AttemptRun } from '../../src/buildd/phases.ts';
import { exportPublicKey, farmSigningKey, type SigningKey } from '../../src/buildd/signing-key.ts';
import { aptClient, downloadAndUnpack } from '../helpers/apt.ts';
import { buildDeb, makeSigningKey, stopAgentAtExit } from '../helpers/dsc.ts';
import { pkgforge } from '../helpers/farm.ts';

describe('the APT repository a bucket publishes into (reprepro), read by a real apt', () => {
  let root: string;
  let repos: string;
  let key: SigningKey;
  let n = 0;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'pkgforge-apt-'));
    repos = join(root, 'repos');
    stopAgentAtExit(join(root, 'gnupg'));
    key = await farmSigningKey(join(root, 'gnupg'), null);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  /** Publishes `debs` as one attempt of a task on deb12/x86_64 in bucket devel; returns the attempt's log. */
  async function publish(debs: string[], suite = 'deb12', allowReplace: string[] = []): Promise<string> {
    const logFile = join(root, `publish-${n++}.log`);
    const log = createWriteStream(logFile);
    const task = {
      claim: { bucket: 'devel', platform: suite, arch: 'x86_64', jobId: `job-${n}`, attempt: 1 },
      info: { products: debs, phases: [] },
      log,
      signal: new AbortController().signal,
    } as unknown as AttemptRun;
    try {
      await new RepreproPublisher(repos, async () => key, allowReplace).run(task);
    } finally {
      await new Promise((r) => log.end(r));
    }
    return readFileSync(logFile, 'utf8');
  }

  const line = (keyFile: string) => `deb [signed-by=${keyFile}] file://${join(repos, 'devel', 'deb')} deb12 main`;

  /** Downloads `name` with apt from the farm's repository, unpacks it and runs it. */
  async function installAndRun(name: string): Promise<string> {
    const keyFile = join(root, 'farm.asc');
    writeFileSync(keyFile, await exportPublicKey(key));
    const client = await aptClient(root, line(keyFile));
    assert.doesNotMatch(client.update, /^(W|E):/m, client.update);
    const unpacked = await downloadAndUnpack(client, name);
    return execFileSync(join(unpacked, 'usr', 'bin', name), { encoding: 'utf8' }).trim();
  }

  it('publishes a package that apt installs with the signature checked, from a suite named after the platform', async () => {
    const log = await publish([buildDeb('tiny', '1.0-1')]);
    assert.match(log, /published 1 package into .*\/repos\/devel\/deb \(suite deb12\)/);
    const dists = join(repos, 'devel', 'deb', 'dists', 'deb12');
    assert.match(readFileSync(join(dists, 'InRelease'), 'utf8'), /^-----BEGIN PGP SIGNED MESSAGE-----/);
    assert.match(readFileSync(join(dists, 'Release'), 'utf8'), /^Architectures: amd64$/m);
    assert.equal(await installAndRun('tiny'), 'Hello from tiny');
  });

  it('is refused by apt under another key', async () => {
    const stranger = makeSigningKey('Someone Else <else@example.org>');
    const keyFile = join(root, 'stranger.asc');
    writeFileSync(
      keyFile,
      execFileSync('gpg', ['--homedir', stranger.home, '--armor', '--export'], { encoding: 'utf8' }),
    );
    const client = await aptClient(root, line(keyFile));
    assert.match(client.update, /NO_PUBKEY|is not signed/);
  });

  it('replaces a version with a newer one, takes the same package again, and refuses an older or a changed one with the reason', async () => {
    await publish([buildDeb('tiny', '1.1-1', 'Hello again from tiny')]);
    assert.equal(await installAndRun('tiny'), 'Hello again from tiny');
    // An attempt published again (a daemon restarted after publishing) changes nothing.
    const same = buildDeb('tiny', '1.2-1', 'Hello, third');
    await publish([same]);
    await publish([same]);
    assert.equal(await installAndRun('tiny'), 'Hello, third');
    await assert.rejects(
      publish([buildDeb('tiny', '1.0-1')]),
      /tiny_1\.0-1_all\.deb: version 1\.0-1 of tiny is older than the 1\.2-1 already published in deb12; apt would never install it/,
    );
    await assert.rejects(
      publish([buildDeb('tiny', '1.2-1', 'something else')]),
      /tiny_1\.2-1_all\.deb: this version is already published in deb12 with other contents; publish a new version/,
    );
    assert.equal(await installAndRun('tiny'), 'Hello, third');
  });

  it('takes an older version, or the same one changed, in place of the published one where the bucket allows it', async () => {
    await publish([buildDeb('swap', '2.0-1', 'Hello from swap 2')]);
    const older = buildDeb('swap', '1.0-1', 'Hello from swap 1');
    await assert.rejects(publish([older], 'deb12', ['other-bucket']), /older than the 2\.0-1 already published/);
    const log = await publish([older], 'deb12', ['devel']);
    assert.match(log, /swap_1\.0-1_all\.deb replaced the published swap in deb12 \(the bucket allows replacing\)/);
    assert.equal(await installAndRun('swap'), 'Hello from swap 1');
    await publish([buildDeb('swap', '1.0-1', 'Hello from swap 1, rebuilt')], 'deb12', ['*']);
    assert.equal(await installAndRun('swap'), 'Hello from swap 1, rebuilt');
  });

  it('keeps one suite per platform in the bucket, each with its own packages', async () => {
    await publish([buildDeb('other', '1.0-1')], 'deb13');
    const conf = readFileSync(join(repos, 'devel', 'deb', 'conf', 'distributions'), 'utf8');
    assert.deepEqual(
      [...conf.matchAll(/^Codename: (.*)$/gm)].map((m) => m[1]),
      ['deb12', 'deb13'],
    );
    const list = execFileSync('reprepro', ['-b', join(repos, 'devel', 'deb'), 'list', 'deb12'], { encoding: 'utf8' });
    assert.doesNotMatch(list, /other/);
  });

  it('prints the public key with pkgforge key export, the one that signs the repositories', async () => {
    const home = mkdtempSync(join(root, 'home-'));
    stopAgentAtExit(join(home, 'gnupg'));
    const exported = await pkgforge(['key', 'export'], { PKGFORGE_HOME: home, HOME: home });
    assert.equal(exported.code, 0, exported.stderr);
    const made = await farmSigningKey(join(home, 'gnupg'), null);
    assert.equal(exported.stdout, await exportPublicKey(made));
    assert.match(exported.stdout, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  });

  it('makes the farm its own signing key once, however many ask at once', async () => {
    const home = join(root, 'gnupg-race');
    stopAgentAtExit(home);
    const keys = await Promise.all([1, 2, 3, 4].map(() => farmSigningKey(home, null)));
    assert.equal(new Set(keys.map((k) => k.fingerprint)).size, 1);
    const listed = execFileSync('gpg', ['--homedir', home, '--with-colons', '--list-secret-keys'], {
      encoding: 'utf8',
    });
    assert.equal(listed.match(/^sec:/gm)?.length, 1);
    await assert.rejects(farmSigningKey(home, 'No Such Key'), {
      code: 'PKGF_ERR_CONFIG',
      message: `The signing key 'No Such Key' (signing_key) is not in ${home} (gnupg_home)`,
    });
  });
});
