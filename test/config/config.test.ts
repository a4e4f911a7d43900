import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { platformNameFromOsRelease } from '../../src/config/host-platform.ts';
import { describeRegistry, loadConfig } from '../../src/config/load-config.ts';

function home() {
  const dir = mkdtempSync(join(tmpdir(), 'pkgforge-config-'));
  mkdirSync(join(dir, 'etc'));
  mkdirSync(join(dir, 'user', '.pkgforge'), { recursive: true });
  return dir;
}
const envFor = (dir: string, extra: Record<string, string> = {}) => ({
  PKGFORGE_HOME: dir,
  HOME: join(dir, 'user'),
  ...extra,
});

describe('configuration', () => {
  it('puts everything under PKGFORGE_HOME on the embedded default', () => {
    const dir = home();
    const c = loadConfig({ files: [], env: envFor(dir) });
    assert.equal(c.incoming, join(dir, 'incoming'));
    assert.equal(c.accepted, join(dir, 'accepted'));
    assert.deepEqual(c.registry, { type: 'sqlite', path: join(dir, 'registry.db') });
    assert.equal(c.waitForJob, 300);
    assert.equal(c.layout.configDir, join(dir, 'etc'));
  });

  it('merges files in order, then the environment, then flags', () => {
    const dir = home();
    writeFileSync(join(dir, 'etc', 'pkgforge.yml'), 'bucket: one\nwait_for_job: 10\ninit: /etc/init.d/ignored\n');
    writeFileSync(join(dir, 'etc', 'submit.yml'), 'bucket: two\n');
    writeFileSync(join(dir, 'user', '.pkgforge', 'submit.yml'), 'bucket: three\nreport: me@example.org\n');
    const env = envFor(dir, { PKGFORGE_WAIT_FOR_JOB: '0' });
    const c = loadConfig({ files: ['submit.yml'], userFiles: true, env });
    assert.equal(c.client.bucket, 'three');
    assert.deepEqual(c.client.report, ['me@example.org']);
    assert.equal(c.waitForJob, 0);
    assert.equal(c.files.length, 3);
    assert.equal(
      loadConfig({ files: ['submit.yml'], userFiles: true, env, overrides: { bucket: 'flag' } }).client.bucket,
      'flag',
    );
  });

  it('--configfile replaces the list, and +FILE appends to it', () => {
    const dir = home();
    writeFileSync(join(dir, 'etc', 'pkgforge.yml'), 'bucket: default\nwebsite: http://farm/\n');
    const mine = join(dir, 'mine.yml');
    writeFileSync(mine, 'bucket: mine\n');
    const replaced = loadConfig({ files: [], configFiles: [mine], env: envFor(dir) });
    assert.equal(replaced.client.bucket, 'mine');
    assert.equal(replaced.website, null);
    const appended = loadConfig({ files: [], configFiles: [`+${mine}`], env: envFor(dir) });
    assert.equal(appended.client.bucket, 'mine');
    assert.equal(appended.website, 'http://farm/');
    assert.throws(
      () => loadConfig({ files: [], configFiles: [join(dir, 'missing.yml')], env: envFor(dir) }),
      /Cannot find the configuration file/,
    );
  });

  it('reads the registry as a URL, a mapping or a SQLite path, and hides passwords in messages', () => {
    const dir = home();
    const pg = loadConfig({
      files: [],
      env: envFor(dir, { PKGFORGE_REGISTRY: 'postgresql://farm:secret@db.example.org/pkgforge' }),
    });
    assert.equal(pg.registry.type, 'postgresql');
    assert.equal(describeRegistry(pg.registry), 'PostgreSQL postgresql://farm:***@db.example.org/pkgforge');
    writeFileSync(
      join(dir, 'etc', 'pkgforge.yml'),
      'registry:\n  host: db\n  name: pkgforge\n  user: pkgforge_incoming\n  pass: ~\n',
    );
    assert.deepEqual(loadConfig({ files: [], env: envFor(dir) }).registry, {
      type: 'postgresql',
      host: 'db',
      database: 'pkgforge',
      user: 'pkgforge_incoming',
    });
  });

  it("reads the web server's limits: seconds, a rate with K/M/G, and 0 to turn one off", () => {
    const dir = home();
    assert.deepEqual(loadConfig({ files: [], env: envFor(dir) }).web.http, {
      headersTimeoutMs: 30_000,
      requestTimeoutMs: 4 * 3600_000,
      idleTimeoutMs: 60_000,
      keepAliveTimeoutMs: 5000,
      uploadMinRate: 10 * 1024,
      uploadRateWindowMs: 30_000,
      maxConnectionsPerClient: 64,
    });
    writeFileSync(
      join(dir, 'etc', 'pkgforge.yml'),
      'headers_timeout: 10\nidle_timeout: 0.5\nkeep_alive_timeout: 65\nupload_min_rate: 1.5M\nupload_rate_window: 60\nmax_connections_per_client: 0\n',
    );
    const c = loadConfig({
      files: [],
      env: envFor(dir, { PKGFORGE_REQUEST_TIMEOUT: '0', PKGFORGE_UPLOAD_MIN_RATE: '20K' }),
    });
    assert.deepEqual(c.web.http, {
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 0,
      idleTimeoutMs: 500,
      keepAliveTimeoutMs: 65_000,
      uploadMinRate: 20 * 1024,
      uploadRateWindowMs: 60_000,
      maxConnectionsPerClient: 0,
    });
    writeFileSync(join(dir, 'etc', 'pkgforge.yml'), 'upload_min_rate: fast\n');
    assert.throws(
      () => loadConfig({ files: [], env: envFor(dir) }),
      /Invalid configuration value for 'upload_min_rate'/,
    );
    writeFileSync(join(dir, 'etc', 'pkgforge.yml'), 'keep_alive_timeout: 0\n');
    assert.throws(
      () => loadConfig({ files: [], env: envFor(dir) }),
      /Invalid configuration value for 'keep_alive_timeout'/,
    );
  });

  it('names the file and the key of a bad value', () => {
    const dir = home();
    writeFileSync(join(dir, 'etc', 'pkgforge.yml'), 'wait_for_job: soon\n');
    assert.throws(
      () => loadConfig({ files: [], env: envFor(dir) }),
      /Invalid configuration value for 'wait_for_job'.*pkgforge\.yml/,
    );
    writeFileSync(join(dir, 'etc', 'pkgforge.yml'), 'a: [\n');
    assert.throws(
      () => loadConfig({ files: [], env: envFor(dir) }),
      /An error occurred whilst loading '.*pkgforge\.yml'/,
    );
    assert.throws(
      () => loadConfig({ files: [], env: envFor(home(), { PKGFORGE_POLL: 'often' }) }),
      /PKGFORGE_POLL='often' is not a number/,
    );
  });

  it('reads the submission limits and the accepted reserve as sizes, with defaults, from files and the environment', () => {
    const dir = home();
    const defaults = loadConfig({ files: [], env: envFor(dir) });
    assert.deepEqual(defaults.submissionLimits, { maxPackageSize: 8 * 1024 ** 3, maxJobSize: 16 * 1024 ** 3 });
    assert.deepEqual(defaults.acceptedReserve, { bytes: 1024 ** 3 });
    writeFileSync(join(dir, 'etc', 'pkgforge.yml'), 'max_package_size: 2G\nmax_job_size: 3G\naccepted_reserve: 5%\n');
    const set = loadConfig({ files: [], env: envFor(dir, { PKGFORGE_MAX_JOB_SIZE: '512M' }) });
    assert.deepEqual(set.submissionLimits, { maxPackageSize: 2 * 1024 ** 3, maxJobSize: 512 * 1024 ** 2 });
    assert.deepEqual(set.acceptedReserve, { percent: 5 });
    assert.deepEqual(loadConfig({ files: [], env: envFor(dir, { PKGFORGE_ACCEPTED_RESERVE: '0' }) }).acceptedReserve, {
      bytes: 0,
    });
    assert.throws(
      () => loadConfig({ files: [], env: envFor(dir, { PKGFORGE_ACCEPTED_RESERVE: '150%' }) }),
      /Invalid configuration value for 'accepted_reserve': '150%' is not a percentage/,
    );
    assert.throws(
      () => loadConfig({ files: [], env: envFor(dir, { PKGFORGE_MAX_PACKAGE_SIZE: 'big' }) }),
      /Invalid configuration value for 'max_package_size'/,
    );
  });

  it('hands each process its own typed, frozen section, sizes parsed and commands read when loaded', () => {
    const dir = home();
    writeFileSync(
      join(dir, 'etc', 'buildd.yml'),
      [
        'checks: rpmlint',
        'reports: [{email: {from: farm@example.org}}, webhook]',
        'limits: {memory: 2G, processes: 64}',
        'platform_limits: {el9: {memory: 512M}}',
        'lease_renewal: 5',
        'lease_expiry: 20',
        'sandbox_user: builder',
        'upload_max_bytes: 1024',
        'token: secret',
        'bucket: devel',
        'platforms: [el9, "!f40"]',
      ].join('\n'),
    );
    const c = loadConfig({ files: ['buildd.yml'], env: envFor(dir) });
    assert.deepEqual(c.buildd.builder, { name: 'rpmbuild', params: {} });
    assert.deepEqual(c.buildd.checks, [{ name: 'rpmlint', params: {} }]);
    assert.deepEqual(c.buildd.reports, [
      { name: 'email', params: { from: 'farm@example.org' } },
      { name: 'webhook', params: {} },
    ]);
    assert.deepEqual(c.buildd.publishers, [{ name: 'createrepo', params: {} }]);
    assert.equal(c.buildd.limits.memory, 2 * 1024 ** 3);
    assert.equal(c.buildd.limits.processes, 64);
    assert.equal(c.buildd.limits.workdir, 20 * 1024 ** 3);
    // A platform's limits refine `limits`, key by key.
    assert.deepEqual(c.buildd.platformLimits.el9, { ...c.buildd.limits, memory: 512 * 1024 ** 2 });
    assert.equal(c.buildd.leaseExpiryMs, 20_000);
    assert.equal(c.buildd.sandbox, 'bwrap');
    assert.equal(c.buildd.sandboxUser, 'builder');
    assert.equal(c.web.uploadMaxBytes, 1024);
    assert.equal(c.web.healthyWithinMs, 20_000);
    assert.deepEqual(c.client, {
      target: join(dir, 'incoming'),
      bucket: 'devel',
      platforms: ['el9', '!f40'],
      archs: [],
      report: [],
      token: 'secret',
    });
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.buildd.limits) && Object.isFrozen(c.buildd.reports[0]!.params));
    assert.throws(() => {
      (c.buildd.limits as { memory: number }).memory = 1;
    }, TypeError);
  });

  it('refuses a bad build limit, command entry or lease timing when loading, naming the key', () => {
    const dir = home();
    const load = (yaml: string) => {
      writeFileSync(join(dir, 'etc', 'buildd.yml'), yaml);
      return () => loadConfig({ files: ['buildd.yml'], env: envFor(dir) });
    };
    assert.throws(load('platform_limits: {el9: {memory: lots}}'), /'platform_limits.el9.memory'/);
    assert.throws(load('checks: [{rpmlint: {}, rpmsign: {}}]'), /'checks': only one command may be named per entry/);
    assert.throws(load('builder: {rpmbuild: {}, mock: {}}'), /'builder': only one command may be named/);
    assert.throws(
      load('lease_renewal: 30\nlease_expiry: 30'),
      /'lease_expiry': 30 s must be longer than lease_renewal/,
    );
  });

  it('names platforms after the distribution', () => {
    assert.equal(platformNameFromOsRelease('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n'), 'el9');
    assert.equal(platformNameFromOsRelease('ID=fedora\nVERSION_ID=40\n'), 'f40');
    assert.equal(platformNameFromOsRelease('ID=debian\nVERSION_ID="12"\n'), 'deb12');
    assert.equal(platformNameFromOsRelease('ID=arch\n'), null);
  });
});
