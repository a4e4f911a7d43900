import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { ensureBuilt, eventually, pkgforge, PROJECT_ROOT, spawnPkgforge } from '../helpers/farm.ts';
import { srpm } from '../helpers/srpm.ts';

// What `npm start` runs, as a process on the embedded default: a fresh data directory, nothing else.
describe('pkgforge serve and pkgforge web, as processes', () => {
  let home: string;
  let env: Record<string, string>;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'pkgforge-serve-'));
    env = { PKGFORGE_HOME: home, HOME: home, PKGFORGE_PLATFORM: 'el9' };
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  it('serve takes a job from submit to success and shows it over HTTP; SIGTERM stops it cleanly', async () => {
    const serve = spawnPkgforge(['serve', '--listen', '127.0.0.1:0'], env);
    try {
      await serve.until(/Submit a job with/);
      const url = serve.output().match(/API: (http:\/\/\S+)\/api\/v1/)![1]!;
      const submitted = await pkgforge(['submit', '--bucket', 'devel', '--id', 'served', srpm('served')], env);
      assert.equal(submitted.code, 0, submitted.stderr);
      const job = await eventually(
        'the job to succeed',
        async () => {
          const r = await fetch(`${url}/api/v1/jobs/served`);
          const body = r.ok
            ? ((await r.json()) as { status: string; tasks: { platform: string; status: string }[] })
            : null;
          return body?.status === 'success' ? body : null;
        },
        120_000,
        200,
      );
      assert.deepEqual(
        job.tasks.map((t) => [t.platform, t.status]),
        [['el9', 'success']],
      );
      serve.child.kill('SIGTERM');
      assert.equal(await serve.exited, 0, serve.output());
    } finally {
      serve.child.kill('SIGKILL');
    }
  });

  it('web serves an initialised farm and stops on SIGTERM', async () => {
    // The web server only checks the schema (it may run as a read-only role): the farm is set up first.
    const init = await pkgforge(['init'], env);
    assert.equal(init.code, 0, init.stderr);
    const web = spawnPkgforge(['web', '--listen', '127.0.0.1:0'], env);
    try {
      await web.until(/PkgForge API at http/);
      const url = web.output().match(/PkgForge API at (http:\/\/\S+)\/api\/v1/)![1]!;
      const r = await fetch(`${url}/api/v1/jobs`);
      assert.equal(r.status, 200);
      const body = (await r.json()) as { jobs: { id: string }[] };
      assert.ok(Array.isArray(body.jobs));
      web.child.kill('SIGTERM');
      assert.equal(await web.exited, 0, web.output());
    } finally {
      web.child.kill('SIGKILL');
    }
  });

  it('serve on a port in use exits non-zero and names the port and the cause', async () => {
    const holder = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const listen = `127.0.0.1:${(holder.address() as AddressInfo).port}`;
    try {
      const r = await pkgforge(['serve', '--listen', listen, '--no-build'], env);
      assert.notEqual(r.code, 0, r.stdout);
      assert.ok(
        r.stderr.includes(`Cannot listen on ${listen}: the port is in use`),
        `stderr names the port and the cause:\n${r.stderr}`,
      );
    } finally {
      holder.close();
    }
  });

  it('SIGTERM to `npm start` reaches the farm: no process is left running', async () => {
    await ensureBuilt();
    // The README's command as a new user runs it: only PATH and a data directory.
    const npmHome = mkdtempSync(join(tmpdir(), 'pkgforge-npm-'));
    const child = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0', '--no-build'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH!, HOME: npmHome, PKGFORGE_HOME: join(npmHome, 'farm'), PKGFORGE_PLATFORM: 'el9' },
      detached: true, // its own process group: whatever npm started can be found (and cleaned up) by it
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid!;
    let out = '';
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => ((out += d.toString()), /Submit a job with/.test(out) && resolve());
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', () => reject(new Error(`npm start exited before the farm was ready:\n${out}`)));
    });
    try {
      await ready;
      const exited = once(child, 'exit');
      process.kill(pid, 'SIGTERM');
      await exited;
      await eventually('every process of npm start to end', () => {
        try {
          process.kill(-pid, 0);
          return false;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code === 'ESRCH';
        }
      });
      assert.match(out, /PkgForge stopped/);
    } finally {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
      rmSync(npmHome, { recursive: true, force: true });
    }
  });
});
