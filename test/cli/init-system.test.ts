import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SYSTEM_USERS, systemDirectories } from '../../src/core/system-layout.ts';
import { preflight } from '../../src/incoming/processor.ts';
import { lookupUser } from '../../src/util/users.ts';
import { pkgforge } from '../helpers/farm.ts';

/** Runs a shell command as a system user (the test runs as root, as CI does). */
function asUser(name: string, uid: number, gid: number, script: string) {
  return spawnSync('sh', ['-c', script], { uid, gid, encoding: 'utf8' });
}

describe('pkgforge init --system: a user per role, and only the incoming processor writes accepted/', () => {
  let root: string;
  before(() => {
    assert.equal(process.geteuid?.(), 0, 'this test creates system users: CI runs it as root');
    root = mkdtempSync(join(tmpdir(), 'pkgforge-system-'));
    chmodSync(root, 0o755);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('creates the users and directories with their owners and modes, and a second run changes nothing', async () => {
    const first = await pkgforge(['init', '--system', '--root', root, '--json'], {});
    assert.equal(first.code, 0, first.stderr);
    assert.ok(
      JSON.parse(first.stdout).changed.some(
        (c: string) => c.startsWith('created ') && c.includes('/var/lib/pkgforge/accepted'),
      ),
    );
    for (const d of systemDirectories()) {
      const st = statSync(join(root, d.path));
      assert.equal((st.mode & 0o7777).toString(8), d.mode.toString(8), d.path);
      const owner = d.owner === 'root' ? 0 : (await lookupUser(d.owner))!.uid;
      assert.equal(st.uid, owner, `${d.path} owner`);
    }
    const second = await pkgforge(['init', '--system', '--root', root], {});
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /nothing changed/);
  });

  it("keeps accepted/ out of the build daemon's, the web server's and the build user's reach", async () => {
    await pkgforge(['init', '--system', '--root', root], {});
    const accepted = join(root, 'var/lib/pkgforge/accepted');
    for (const name of [SYSTEM_USERS.buildd, SYSTEM_USERS.web, SYSTEM_USERS.build]) {
      const u = (await lookupUser(name))!;
      const r = asUser(name, u.uid, u.gid, `echo forged > '${accepted}/forged'`);
      assert.notEqual(r.status, 0, `${name} could write into accepted/`);
      assert.match(r.stderr, /Permission denied/);
    }
    const incoming = (await lookupUser(SYSTEM_USERS.incoming))!;
    const ok = asUser(
      SYSTEM_USERS.incoming,
      incoming.uid,
      incoming.gid,
      `echo mine > '${accepted}/mine' && rm '${accepted}/mine'`,
    );
    assert.equal(ok.status, 0, ok.stderr);
  });

  it('refuses to run the incoming processor when accepted/ may be written by its group, naming the path', async () => {
    await pkgforge(['init', '--system', '--root', root], {});
    const accepted = join(root, 'var/lib/pkgforge/accepted');
    chmodSync(accepted, 0o775);
    try {
      await assert.rejects(
        preflight({ incoming: join(root, 'var/lib/pkgforge/incoming'), accepted }),
        new RegExp(`accepted directory '${accepted}' may be written by its group \\(mode 0775\\)`),
      );
    } finally {
      chmodSync(accepted, 0o755);
    }
  });
});
