import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { makeRegistryConfig, DIALECTS } from '../helpers/registries.ts';
import { PKGFORGE_ARGS, pkgforge, registryEnv } from '../helpers/farm.ts';
import { srpm } from '../helpers/srpm.ts';

for (const dialect of DIALECTS) {
  describe(`the pkgforge program on ${dialect}`, () => {
    let env: Record<string, string>;
    let drop: () => Promise<void>;
    let hello: string;
    before(async () => {
      const home = mkdtempSync(join(tmpdir(), 'pkgforge-cli-'));
      const reg = await makeRegistryConfig(dialect);
      drop = reg.drop;
      env = {
        PKGFORGE_HOME: home,
        HOME: join(home, 'user'),
        PKGFORGE_REGISTRY: registryEnv(reg.config),
        PKGFORGE_PLATFORM: 'el9',
      };
      hello = srpm('hello');
    });
    after(() => drop());

    it("initialises the farm with this host's platform active and auto", async () => {
      const init = await pkgforge(['init'], env);
      assert.equal(init.code, 0, init.stderr);
      assert.match(init.stdout, /Registered this host's platform el9\/\S+ \(active, auto\)/);
      const list = await pkgforge(['platform', 'list', '--json'], env);
      const platforms = JSON.parse(list.stdout) as { name: string; active: boolean; auto: boolean; family: string }[];
      // The host's platform builds what its builder (rpmbuild) builds.
      assert.deepEqual(
        platforms.map((p) => [p.name, p.active, p.auto, p.family]),
        [['el9', true, true, 'rpm']],
      );
    });

    it('submits a job, registers it in one pass, and shows it', async () => {
      const submit = await pkgforge(
        ['submit', '--bucket', 'devel', '--report', 'rel@example.org', '--json', hello],
        env,
      );
      assert.equal(submit.code, 0, submit.stderr);
      const { id } = JSON.parse(submit.stdout) as { id: string };
      assert.match(id, /^[A-Za-z0-9_-]{22}$/);
      const pass = await pkgforge(['incoming'], env);
      assert.equal(pass.code, 0, pass.stderr);
      assert.match(pass.stdout, new RegExp(`job ${id}: registered with 1 task`));
      const show = await pkgforge(['job', 'show', id, '--json'], env);
      const job = JSON.parse(show.stdout) as {
        status: string;
        tasks: { status: string }[];
        packages: { name: string }[];
      };
      assert.equal(job.status, 'registered');
      assert.deepEqual(
        job.tasks.map((t) => t.status),
        ['needs build'],
      );
      assert.equal(job.packages[0]!.name, 'hello');
      const jobs = await pkgforge(['jobs', '--status', 'registered'], env);
      assert.match(jobs.stdout, new RegExp(`^${id}\\s+registered\\s+devel`, 'm'));
    });

    it('warns when the job selects no active platform of the farm, and not otherwise', async () => {
      const nowhere = await pkgforge(
        ['submit', '--bucket', 'devel', '--platforms', 'f99', '--id', 'nowhere', hello],
        env,
      );
      assert.equal(nowhere.code, 0, nowhere.stderr);
      assert.match(nowhere.stdout, /Successfully submitted 1 package as build job nowhere/);
      assert.match(nowhere.stderr, /^Warning: platform 'f99' is unknown$/m);
      assert.match(
        nowhere.stderr,
        /^Warning: the job's filters \(platforms: f99\) select no active rpm platform of this farm: it will not be built anywhere$/m,
      );
      const fine = await pkgforge(
        ['submit', '--bucket', 'devel', '--platforms', 'el9', '--id', 'somewhere', hello],
        env,
      );
      assert.equal(fine.code, 0, fine.stderr);
      assert.doesNotMatch(fine.stderr, /Warning/);
      // Taken out of incoming, as every test leaves it.
      assert.equal((await pkgforge(['incoming'], env)).code, 0);
    });

    it('fails clearly, with nothing left in incoming, on bad submissions', async () => {
      const fake = join(env.PKGFORGE_HOME!, 'fake-1-1.src.rpm');
      writeFileSync(fake, 'no rpm here');
      const copyAs = (name: string) => {
        const dir = mkdtempSync(join(tmpdir(), 'pkgforge-named-'));
        copyFileSync(hello, join(dir, name));
        return join(dir, name);
      };
      const small = { PKGFORGE_MAX_PACKAGE_SIZE: '1K' };
      // An address where nothing listens: a port just given up.
      const holder = createServer().listen(0, '127.0.0.1');
      await once(holder, 'listening');
      const nobody = `http://127.0.0.1:${(holder.address() as AddressInfo).port}`;
      await new Promise((r) => holder.close(r));
      const cases: [string[], RegExp, Record<string, string>?][] = [
        [
          ['submit', '--bucket', 'devel', copyAs('hello\u202egpj.src.rpm')],
          /hello\\u202egpj\.src\.rpm: the file name contains the invisible or text-direction character \\u202e/,
        ],
        [
          ['submit', '--bucket', 'devel', copyAs('caf\u00e9-1.src.rpm'), copyAs('cafe\u0301-1.src.rpm')],
          /differ only in their Unicode form/,
        ],
        [
          ['submit', '--bucket', 'devel', hello],
          /The job cannot be submitted: hello-1\.0-1\.src\.rpm: is \d+ bytes .*, more than the farm accepts for one package \(max_package_size: 1 KiB\)/,
          small,
        ],
        // Refused before anything is sent: there is no server at this address.
        [
          ['submit', '--bucket', 'devel', '--server', 'http://127.0.0.1:1', '--token', 't', hello],
          /max_package_size: 1 KiB/,
          small,
        ],
        // A server that cannot be reached: its address and the cause, for submit and logs.
        [
          ['submit', '--bucket', 'devel', '--server', nobody, '--token', 't', hello],
          /^pkgforge: Cannot reach the PkgForge server at http:\/\/127\.0\.0\.1:\d+: connection refused/m,
        ],
        [
          ['logs', 'somejob', '--server', nobody, '--platform', 'el9', '--arch', 'x86_64'],
          /^pkgforge: Cannot reach the PkgForge server at http:\/\/127\.0\.0\.1:\d+: connection refused/m,
        ],
        [['submit', hello], /Required option missing: bucket/],
        [['submit', '--bucket', 'devel', fake], /fake-1-1\.src\.rpm: not a valid RPM/],
        [['submit', '--bucket', 'devel', join(env.PKGFORGE_HOME!, 'missing.src.rpm')], /does not exist/],
        [['submit', '--bucket', 'devel', '--id', 'x'.repeat(51), hello], /51 characters/],
        [['submit', '--bucket', 'devel', '--report', 'not-an-address', hello], /not a valid e-mail address/],
        [['submit', '--bucket', 'devel', '/etc/hostname'], /Unsupported package type/],
      ];
      // Each is its own process; they run at once, and incoming must be empty after all of them.
      const results = await Promise.all(cases.map(([args, , extra]) => pkgforge(args, { ...env, ...extra })));
      cases.forEach(([args, message], i) => {
        const r = results[i]!;
        const what = `${args.join(' ')}\nexit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
        assert.notEqual(r.code, 0, what);
        assert.match(r.stderr, message, what);
        assert.doesNotMatch(r.stderr, /\n\s+at /, `no stack trace: ${what}`);
      });
      assert.deepEqual(readdirSync(join(env.PKGFORGE_HOME!, 'incoming')), [], 'nothing left in incoming');
    });

    it("manages platforms and builders with the original's messages", async () => {
      assert.match(
        (await pkgforge(['platform', 'add', '--name', 'f40', '--architecture', 'x86_64'], env)).stdout,
        /Successfully added f40\/x86_64 platform/,
      );
      assert.match(
        (await pkgforge(['platform', 'add', '--name', 'f40', '--architecture', 'x86_64'], env)).stderr,
        /it already exists/,
      );
      const warn = await pkgforge(
        ['builder', 'add', '--name', 'h1_f40', '--platform', 'f40', '--architecture', 'x86_64'],
        env,
      );
      assert.match(warn.stderr, /not currently active/);
      assert.match(warn.stdout, /Successfully added builder 'h1_f40'/);
      assert.match(
        (await pkgforge(['platform', 'act', '--name', 'f40', '--architecture', 'x86_64'], env)).stdout,
        /Successfully activated/,
      );
      assert.match((await pkgforge(['builder', 'list'], env)).stdout, /^h1_f40\s+f40\/x86_64\s+offline\s/m);
      const deb = await pkgforge(
        ['platform', 'add', '--name', 'sid', '--architecture', 'x86_64', '--family', 'deb'],
        env,
      );
      assert.match(deb.stdout, /Successfully added sid\/x86_64 platform/);
      assert.match((await pkgforge(['platform', 'list'], env)).stdout, /^sid\tx86_64\t\t0\t0\tdeb$/m);
      assert.match((await pkgforge(['platform', 'list'], env)).stdout, /^f40\tx86_64\t\t1\t0\trpm$/m);
      const bad = await pkgforge(
        ['platform', 'add', '--name', 'x', '--architecture', 'x86_64', '--family', 'apk'],
        env,
      );
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /--family takes rpm or deb, not 'apk'/);
      assert.match((await pkgforge(['platform', 'frobnicate'], env)).stderr, /Invalid action 'frobnicate'/);
      assert.match(
        (await pkgforge(['builder', 'add', '--name', 'h2', '--platform', 'nope', '--architecture', 'x86_64'], env))
          .stderr,
        /Failed to find the platform 'nope\/x86_64'/,
      );
    });

    it('runs as a daemon: registers a job as soon as it arrives, and stops on SIGTERM', async () => {
      const child = spawn(process.execPath, [...PKGFORGE_ARGS, 'incoming', '--daemon'], {
        env: { ...process.env, ...env, PKGFORGE_POLL: '3600' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      const seen = (pattern: RegExp) =>
        new Promise<void>((resolve, reject) => {
          const check = () => pattern.test(log) && resolve();
          child.stderr.on('data', (d: Buffer) => {
            log += d.toString();
            check();
          });
          child.once('exit', () => reject(new Error(`daemon exited before ${pattern}:\n${log}`)));
          check();
        });
      await seen(/Starting incoming queue processing daemon/);
      const submit = await pkgforge(['submit', '--bucket', 'devel', '--id', 'daemon-job', hello], env);
      assert.equal(submit.code, 0, submit.stderr);
      // The poll interval is an hour: only the file-system event can have woken it.
      await seen(/Registered 1 tasks for daemon-job/);
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      assert.equal(code, 0);
      assert.match(log, /Stopping incoming queue processing daemon/);
      assert.ok(!existsSync(join(env.PKGFORGE_HOME!, 'incoming', 'daemon-job')));
    });

    it('refuses to start the daemon when a directory is missing', async () => {
      const r = await pkgforge(['incoming', '--daemon'], {
        ...env,
        PKGFORGE_ACCEPTED: join(env.PKGFORGE_HOME!, 'nowhere'),
      });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /The accepted jobs directory '.*nowhere' does not exist/);
    });
  });
}
