import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { testBuildRoots } from '../helpers/debian.ts';
import { pkgforge } from '../helpers/farm.ts';

describe('pkgforge buildroot', () => {
  const home = mkdtempSync(join(tmpdir(), 'pkgforge-buildroot-'));
  const env = (buildroots = join(home, 'buildroots')) => ({
    PKGFORGE_HOME: home,
    HOME: home,
    PKGFORGE_BUILDROOTS: buildroots,
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('lists the build roots there are, and says so when there are none', async () => {
    const none = await pkgforge(['buildroot', 'list'], env());
    assert.equal(none.code, 0, none.stderr);
    assert.match(none.stdout, /^There are no build roots in .*\/buildroots$/m);
    const some = await pkgforge(['buildroot', 'list', '--json'], env(await testBuildRoots()));
    assert.equal(some.code, 0, some.stderr);
    const [root] = JSON.parse(some.stdout);
    assert.equal(root.platform, 'deb12');
    assert.equal(root.suite, 'bookworm');
    assert.ok(root.bytes > 50 * 1024 * 1024, `${root.bytes} bytes`);
  });

  it('refuses a platform that is no Debian release, and one whose build root exists', async () => {
    const el9 = await pkgforge(['buildroot', 'create', 'el9'], env());
    assert.equal(el9.code, 1);
    assert.match(
      el9.stderr,
      /Cannot tell which Debian release the platform 'el9' is: build roots are made for deb9, .*deb12/,
    );
    const again = await pkgforge(['buildroot', 'create', 'deb12', '--arch', 'x86_64'], env(await testBuildRoots()));
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /The build root of deb12\/x86_64 exists \(.*\); `pkgforge buildroot update deb12` remakes it/,
    );
  });

  it("says mmdebstrap's failure and leaves nothing behind when the mirror cannot be reached", async () => {
    const r = await pkgforge(['buildroot', 'create', 'deb12', '--mirror', 'http://127.0.0.1:9/debian'], env());
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /mmdebstrap could not make the build root of deb12\/x86_64 \(bookworm from http:\/\/127\.0\.0\.1:9\/debian\): exit code \d+; its output above says why/,
    );
    assert.deepEqual(readdirSync(join(home, 'buildroots')), []);
  });
});
