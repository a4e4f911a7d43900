import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runBuildd, type TaskReport } from '../../src/buildd/daemon.ts';
import { builddSettings } from '../../src/buildd/setup.ts';
import { loadConfig } from '../../src/config/load-config.ts';
import type { ConfigFile } from '../../src/config/schema.ts';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { addBuilder, listBuilders } from '../../src/registry/builders.ts';
import { cancelTasks } from '../../src/registry/tasks.ts';
import { silentLog } from '../../src/util/log.ts';
import { addPlatforms, makeFarm, pkgforge, registryEnv, type TestFarm, submitTo } from '../helpers/farm.ts';
import { buildRpm, specFor, srpm } from '../helpers/srpm.ts';
import { farmApp } from '../helpers/web.ts';

const never = new AbortController().signal;
/** Set while the test makes its SRPMs, so parse-time probes do nothing on the test's own host. */
const MAKING = 'PKGFORGE_TEST_MAKING_SRPM';

/**
 * A probe: a package whose %build tries one thing a build must not do and prints
 * `PROBE <name> reached` if it worked, `PROBE <name> blocked` if it did not, on stderr, the
 * stream rpmbuild's own trace goes to, so the line is never interleaved with another.
 */
function probe(name: string, attempt: string, extra: { preamble?: string; build?: string } = {}): string {
  const spec = specFor(`probe-${name}`)
    .replace('%description', `${extra.preamble ?? ''}\n%description`)
    .replace(
      '%install',
      `%build\nif ( ${attempt} ) >/dev/null 2>&1; then echo "PROBE ${name} reached" >&2; else echo "PROBE ${name} blocked" >&2; fi\n${extra.build ?? ''}\n%install`,
    );
  process.env[MAKING] = '1';
  try {
    return buildRpm(spec);
  } finally {
    delete process.env[MAKING];
  }
}

/** Processes on this host whose command line contains `marker`. */
function processesWith(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (cmd.includes(marker)) found.push(`${pid}: ${cmd}`);
    } catch {
      // gone
    }
  }
  return found;
}

describe('the build sandbox: hostile packages are blocked and the farm carries on (SQLite, real rpmbuild, bubblewrap)', () => {
  let farm: TestFarm;
  let repos: string;
  let listener: Server;
  let port = 0;
  let connections = 0;
  let secretDir: string;
  before(async () => {
    farm = await makeFarm('sqlite');
    repos = join(farm.root, 'repos');
    await addPlatforms(farm, 'el9/x86_64*');
    await addBuilder(farm.registry.db, 'b1', 'el9', 'x86_64');
    listener = createServer((s) => (connections++, s.destroy()));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    port = (listener.address() as { port: number }).port;
    // A farm configuration directory inside the visible read-only root (as /etc/pkgforge is in a
    // system install) holding a secret: the sandbox must cover it.
    secretDir = process.geteuid?.() === 0 ? `/etc/pkgforge-test-${process.pid}` : join(farm.root, 'etc');
    mkdirSync(secretDir, { recursive: true });
    writeFileSync(join(secretDir, 'registry.yml'), 'registry: postgresql://farm:hunter2@db/pkgforge\n');
  });
  after(async () => {
    listener.close();
    rmSync(secretDir, { recursive: true, force: true });
    await farm.dispose();
  });

  const config = (extra: Partial<ConfigFile>) =>
    loadConfig({
      files: [],
      env: { PKGFORGE_HOME: farm.root, HOME: farm.root, PKGFORGE_CONFIG_DIR: secretDir },
      overrides: {
        repos,
        sandbox_dir: farm.builds,
        registry: `sqlite:${farm.config.type === 'sqlite' ? farm.config.path : ''}`,
        checks: [],
        limits: { processes: 128, memory: '1G', workdir: '256M' },
        timeout: 60,
        ...extra,
      },
    });
  const ctx = (extra: Partial<ConfigFile> = {}) => ({
    registry: farm.registry,
    name: 'b1',
    dirs: { accepted: farm.accepted, results: farm.results, tmpdir: join(farm.root, 'tmp') },
    settings: builddSettings(config(extra)),
    log: silentLog,
  });
  let n = 0;
  async function build(file: string, extra: Partial<ConfigFile> = {}): Promise<{ report: TaskReport; log: string }> {
    const id = `probe-${n++}`;
    await submitTo(farm, id, [file]);
    const pass = await runIncomingPass(farm.ctx());
    assert.equal(pass.outcomes[0]?.kind, 'registered', JSON.stringify(pass.outcomes));
    const [report] = await runBuildd(ctx(extra), { once: true, stop: never, abort: never });
    assert.ok(report, 'the daemon built nothing');
    const log = readFileSync(join(farm.results, id, 'el9-x86_64', `attempt-${report.attempt}`, 'build.log'), 'utf8');
    return { report, log };
  }
  /** The probe ran and was blocked, and the build itself ended as `status`. */
  async function blocked(name: string, file: string, status: 'success' | 'fail' = 'success'): Promise<string> {
    const { report, log } = await build(file);
    assert.match(log, new RegExp(`^PROBE ${name} blocked$`, 'm'), log);
    assert.doesNotMatch(log, /^PROBE \S+ reached$/m, log);
    assert.equal(report.status, status, report.reason ?? '');
    return log;
  }

  it('keeps the registry, the data directory and the farm configuration out of reach', async () => {
    const other = join(farm.accepted, 'victim');
    mkdirSync(other);
    writeFileSync(join(other, 'secret.txt'), 'another job\n');
    const registryPath = farm.config.type === 'sqlite' ? farm.config.path : '';
    await blocked('registry', probe('registry', `cat ${registryPath} || cat ${farm.root}/registry.db`));
    await blocked('datadir', probe('datadir', `cat ${other}/secret.txt || ls ${farm.accepted} || ls ${farm.results}`));
    await blocked('config', probe('config', `cat ${secretDir}/registry.yml`));
  });

  it('gives a build no nested user namespace (in which it could hide processes and memory from the limits)', async () => {
    await blocked('nested', probe('nested', 'unshare -Ur true'));
  });

  it('lets a build write nowhere but its own work directory: not the repositories, results, the root or /usr', async () => {
    mkdirSync(join(repos, 'devel'), { recursive: true });
    for (const [name, target] of [
      ['repos', join(repos, 'devel', 'evil.rpm')],
      ['results', join(farm.results, 'evil')],
      ['root', '/evil-pkgforge-probe'],
      ['usr', '/usr/evil-pkgforge-probe'],
    ] as const) {
      await blocked(`write-${name}`, probe(`write-${name}`, `echo owned > ${target}`));
      assert.equal(existsSync(target), false, `${target} was written`);
    }
  });

  it('gives a build no network: no connection to a listener on 127.0.0.1, no name resolution', async () => {
    await blocked(
      'connect',
      probe('connect', `python3 -c "import socket; socket.create_connection(('127.0.0.1', ${port}), 3)"`),
    );
    assert.equal(connections, 0);
    await blocked('resolve', probe('resolve', `python3 -c "import socket; socket.getaddrinfo('deb.debian.org', 80)"`));
  });

  it("gives a build a clean environment and none of the daemon's processes, as an unprivileged host user", async () => {
    process.env.PKGFORGE_TOKEN = 'tok-Zq81xWv';
    process.env.PKGFORGE_HOME_LEAK = 'leak-Yh27';
    try {
      // rpmbuild's own environment (the parent of the %build script) is the one the sandbox gave it.
      const file = probe('daemon', `kill -0 ${process.pid} || ls /proc/${process.pid}`, {
        build:
          '{ tr "\\0" "\\n" < /proc/$PPID/environ | sed "s/^/ENV /"; ps ax | wc -l; cat /etc/shadow || echo "shadow unreadable"; } >&2; sleep 3.044',
      });
      const building = blocked('daemon', file);
      // Seen from the host while it runs, the build's process belongs to a user that is not root.
      let uid: number | null = null;
      while (uid === null) {
        const [found] = processesWith('sleep 3.044');
        const pid = found?.split(':')[0];
        const status = pid ? readFileSync(`/proc/${pid}/status`, 'utf8') : '';
        const m = status.match(/^Uid:\s+(\d+)\s+(\d+)/m);
        if (m) uid = Number(m[2]);
        else await new Promise((r) => setImmediate(r));
      }
      assert.notEqual(uid, 0, 'the build ran as host root');
      if (process.geteuid?.() !== 0) assert.equal(uid, process.geteuid?.());
      const log = await building;
      assert.doesNotMatch(log, /tok-Zq81xWv|leak-Yh27/);
      assert.deepEqual(
        log
          .split('\n')
          .filter((l) => l.startsWith('ENV '))
          .map((l) => l.slice(4).split('=')[0])
          .sort(),
        ['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR'],
      );
      assert.match(log, /^ENV HOME=\/build$/m);
      assert.match(log, /^ENV LANG=C\.UTF-8$/m);
      assert.match(log, /^shadow unreadable$/m);
    } finally {
      delete process.env.PKGFORGE_TOKEN;
      delete process.env.PKGFORGE_HOME_LEAK;
    }
  });

  it('leaves no process behind after a build, and kills everything at the timeout', async () => {
    await blocked('linger', probe('linger', 'false', { build: '(setsid sleep 3011 &) ; sleep 0.2' }));
    assert.deepEqual(processesWith('sleep 3011'), []);
    const { report } = await build(
      buildRpm(specFor('slowpoke').replace('%install', '%build\n(setsid sleep 3022 &)\nsleep 3023\n%install')),
      { timeout: 1 },
    );
    assert.equal(report.status, 'fail');
    assert.match(report.reason ?? '', /killed after the build timeout of 1 s/);
    assert.deepEqual([...processesWith('sleep 3022'), ...processesWith('sleep 3023')], []);
    // A cancel while it builds: the daemon stops it within seconds, and nothing it started is left.
    const id = `probe-${n}`;
    const building = build(
      buildRpm(specFor('cancelme').replace('%install', '%build\n(setsid sleep 3033 &)\nsleep 3034\n%install')),
    );
    while (processesWith('sleep 3034').length === 0) await new Promise((r) => setTimeout(r, 20));
    await cancelTasks(farm.registry, id);
    const cancelled = await building;
    assert.equal(cancelled.report.status, 'cancelled');
    assert.deepEqual([...processesWith('sleep 3033'), ...processesWith('sleep 3034')], []);
  });

  it('stops a fork bomb at the process limit, and an allocation past the memory limit, naming the limit', async () => {
    const bomb = await build(
      buildRpm(specFor('bomb').replace('%install', "%build\nbash -c 'b() { b | b & }; b'\nsleep 30\n%install")),
    );
    assert.equal(bomb.report.status, 'fail');
    assert.match(bomb.report.reason ?? '', /exceeded its limit of 128 processes/);
    assert.deepEqual(processesWith('bash -c b()'), []);
    const hog = await build(
      buildRpm(specFor('hog').replace('%install', '%build\npython3 -c "x = bytearray(3 * 1024 ** 3)"\n%install')),
    );
    assert.equal(hog.report.status, 'fail');
    assert.match(hog.report.reason ?? '', /exceeded its memory limit of 1 GiB/);
  });

  it('stops a build that fills its work directory past the limit', async () => {
    const { report } = await build(
      buildRpm(
        specFor('filler').replace(
          '%install',
          '%build\nfor i in $(seq 1 400); do head -c 1048576 /dev/zero > $HOME/fill-$i; done\nsleep 30\n%install',
        ),
      ),
    );
    assert.equal(report.status, 'fail');
    assert.match(report.reason ?? '', /exceeded its work directory limit of 256 MiB/);
  });

  it('refuses a product that is a symbolic link (to /etc/passwd), with the reason', async () => {
    const spec = specFor('linker').replace(
      '%install',
      '%build\nmkdir -p %{_topdir}/RPMS\nln -s /etc/passwd %{_topdir}/RPMS/passwd-1.0-1.noarch.rpm\n%install',
    );
    const { report, log } = await build(buildRpm(spec));
    assert.equal(report.status, 'fail');
    assert.match(report.reason ?? '', /Refused the product passwd-1\.0-1\.noarch\.rpm: it is a symbolic link/);
    assert.match(log, /Refused the product passwd-1\.0-1\.noarch\.rpm/);
    assert.equal(existsSync(join(repos, 'devel', 'el9', 'x86_64', 'passwd-1.0-1.noarch.rpm')), false);
    // A products directory that is a link to a host directory the daemon can read is refused too.
    const hostDir = join(srpm('hello'), '..');
    const dirLink = specFor('dirlinker').replace(
      '%install',
      `%build\nrm -rf %{_topdir}/SRPMS\nln -s ${hostDir} %{_topdir}/SRPMS\n%install`,
    );
    const second = await build(buildRpm(dirLink));
    assert.equal(second.report.status, 'fail');
    assert.match(second.report.reason ?? '', /Refused the products in rpmbuild\/SRPMS: SRPMS is a symbolic link/);
  });

  it('runs the macros a spec runs when it is parsed (%(…) and %{lua:…}) inside the sandbox', async () => {
    const shellTarget = join(repos, 'parse-shell-owned');
    const luaTarget = join(repos, 'parse-lua-owned');
    const shell = `%global parsed %(if [ -z "$${MAKING}" ]; then if echo owned > ${shellTarget} 2>/dev/null; then echo reached; else echo blocked; fi; fi)`;
    await blocked('parse-shell', probe('parse-shell', 'test "%{parsed}" = reached', { preamble: shell }));
    assert.equal(existsSync(shellTarget), false);
    const lua = `%global parsed %{lua: if os.getenv("${MAKING}") == nil then local f = io.open("${luaTarget}", "w"); if f then f:write("owned"); f:close(); print("reached") else print("blocked") end end}`;
    await blocked('parse-lua', probe('parse-lua', 'test "%{parsed}" = reached', { preamble: lua }));
    assert.equal(existsSync(luaTarget), false);
  });

  it('refuses to start a builder whose sandbox cannot start, naming the cause, and records it', async () => {
    await assert.rejects(
      runBuildd(ctx({ sandbox_user: 'no-such-user-pkgforge' }), { once: true, stop: never, abort: never }),
      /sandbox_user 'no-such-user-pkgforge'/,
    );
    const [b] = await listBuilders(farm.registry.db);
    assert.match(b!.unableReason ?? '', /no-such-user-pkgforge/);
  });

  it('builds unsandboxed only when told `sandbox: none`, and says so in the log, the registry, `builder list` and the web page', async () => {
    const { report, log } = await build(srpm('plain'), { sandbox: 'none' });
    assert.equal(report.status, 'success', report.reason ?? '');
    assert.match(log, /WARNING: this build is not sandboxed/);
    const [b] = await listBuilders(farm.registry.db);
    assert.equal(b!.sandbox, 'none');
    const cli = await pkgforge(['builder', 'list'], {
      PKGFORGE_HOME: farm.root,
      PKGFORGE_REGISTRY: registryEnv(farm.config),
    });
    assert.match(cli.stdout, /^b1\s+el9\/x86_64\s+\w+, UNSANDBOXED\s/m, cli.stdout + cli.stderr);
    const app = await farmApp(farm, { uploadMaxBytes: 1024 });
    try {
      assert.match((await app.inject({ url: '/builders' })).body, /unsandboxed/);
      assert.equal((await app.inject({ url: '/api/v1/builders' })).json()[0].sandbox, 'none');
    } finally {
      await app.close();
    }
  });

  it('builds, checks and publishes a normal package after all of that', async () => {
    const { report, log } = await build(srpm('hello'), { checks: ['rpmlint'] });
    assert.equal(report.status, 'success', report.reason ?? '');
    assert.match(log, /sandbox: bubblewrap, no network/);
    assert.equal((await listBuilders(farm.registry.db))[0]!.sandbox, 'bwrap');
    assert.ok(existsSync(join(repos, 'devel', 'el9', 'x86_64', 'hello-1.0-1.noarch.rpm')));
    // Nothing of any attempt's workspace is left.
    assert.deepEqual(readdirSync(join(farm.builds, 'b1')), []);
  });
});
