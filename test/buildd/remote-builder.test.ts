import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { listAttempts } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { createBuilderToken } from '../../src/registry/tokens.ts';
import {
  addPlatforms,
  eventually,
  farmEnv,
  makeFarm,
  pkgforge,
  spawnPkgforge,
  submitTo,
  type PkgforgeChild,
  type TestFarm,
} from '../helpers/farm.ts';
import { makeNetns, type NetworkNamespace } from '../helpers/netns.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { buildRpm, specFor, ticking } from '../helpers/srpm.ts';

/** A package of `mb` MiB of random bytes, stored uncompressed: its upload takes a while. */
const large = (name: string, mb: number) =>
  buildRpm(
    `%define _binary_payload w0.ufdio\n${specFor(name).replace(
      /%install\n.*\n%files\n.*\n/,
      `%install\nmkdir -p %{buildroot}/usr/share/${name} && head -c ${mb}M /dev/urandom > %{buildroot}/usr/share/${name}/blob\n%files\n/usr/share/${name}/blob\n`,
    )}`,
  );

for (const dialect of DIALECTS) {
  describe(`a remote builder on ${dialect}, in a network namespace that reaches only the farm's HTTP port`, () => {
    let farm: TestFarm;
    let ns: NetworkNamespace;
    let web: PkgforgeChild;
    let port: number;
    let builderHome: string;
    let builderEnv: Record<string, string>;
    let hidden: string[];
    let token2: string;
    const children: PkgforgeChild[] = [];
    // Short leases, so a killed builder's task comes back within seconds.
    const farmSettings = { PKGFORGE_LEASE_RENEWAL: '0.5', PKGFORGE_LEASE_EXPIRY: '20' };

    const startWeb = async (listenPort = 0) => {
      const w = spawnPkgforge(['web', '--listen', `${ns.hostAddress}:${listenPort}`], farmEnv(farm, farmSettings));
      children.push(w);
      await w.until(/PkgForge API at http:\/\/[^:]+:\d+/);
      return { child: w, port: Number(/PkgForge API at http:\/\/[^:]+:(\d+)/.exec(w.output())![1]) };
    };
    const startBuilder = (name = 'rb1', env = builderEnv) => {
      const b = spawnPkgforge(
        ['buildd', '--server', `http://${ns.hostAddress}:${port}`, '--name', name, '--daemon'],
        env,
        ns.prefix(hidden),
      );
      children.push(b);
      return b;
    };
    async function submit(id: string, files: string[]) {
      await submitTo(farm, id, files);
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
    }
    const attemptsOf = async (id: string) => {
      const job = (await getJobDetail(farm.registry.db, id))!;
      return listAttempts(farm.registry.db, job.tasks[0]!.id);
    };
    const published = (name: string) =>
      readdirSync(join(farm.root, 'repos', 'devel', 'el9', 'x86_64')).filter((f) => f.startsWith(`${name}-`));
    const farmLog = (id: string, attempt: number) => {
      const path = join(farm.results, id, 'el9-x86_64', `attempt-${attempt}`, 'build.log');
      return existsSync(path) ? readFileSync(path, 'utf8') : '';
    };
    /** Resolves once the first attempt's product is being uploaded: its partial file is on the farm. */
    const uploading = (id: string) => {
      const received = join(farm.results, id, 'el9-x86_64', 'attempt-1', '.received');
      return eventually(
        `the upload of ${id} to start`,
        () => existsSync(received) && readdirSync(received).some((f) => f.endsWith('.partial')),
        120_000,
        2,
      );
    };
    const done = (id: string) =>
      eventually(`job ${id} to end`, async () => {
        const job = await getJobDetail(farm.registry.db, id);
        return job && ['success', 'fail'].includes(job.status) && job;
      });

    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*', 'el8/x86_64');
      await addBuilder(farm.registry.db, 'rb1', 'el9', 'x86_64');
      await addBuilder(farm.registry.db, 'rb2', 'el8', 'x86_64');
      const { token } = await createBuilderToken(farm.registry.db, 'rb1');
      token2 = (await createBuilderToken(farm.registry.db, 'rb2')).token;
      // The farm takes products of at most 1 KiB for el8 (the builder's own limit is the default).
      mkdirSync(join(farm.root, 'etc'), { recursive: true });
      writeFileSync(join(farm.root, 'etc', 'buildd.yml'), 'platform_limits:\n  el8:\n    product: 1K\n');
      ns = makeNetns();
      ({ child: web, port } = await startWeb());
      builderHome = mkdtempSync(join(tmpdir(), 'pkgforge-builder-'));
      const builds = mkdtempSync('/var/tmp/pkgforge-test-remote-builds-');
      chmodSync(builds, 0o711);
      mkdirSync(join(builderHome, 'etc'));
      builderEnv = {
        PKGFORGE_HOME: builderHome,
        HOME: builderHome,
        PKGFORGE_BUILDER_TOKEN: token,
        PKGFORGE_SANDBOX_DIR: builds,
      };
      // The builder sees none of the farm's files, nor the database's socket.
      hidden = [farm.root, farm.builds, '/run/postgresql'];
      if (farm.config.type === 'sqlite') hidden.push(dirname(farm.config.path!));
    });
    after(async () => {
      for (const c of children) c.child.kill('SIGKILL');
      await Promise.all(children.map((c) => c.exited));
      ns?.dispose();
      rmSync(builderHome, { recursive: true, force: true });
      rmSync(builderEnv.PKGFORGE_SANDBOX_DIR!, { recursive: true, force: true });
      await farm.dispose();
    });

    it('reaches the farm over HTTP only: not its database, not its files', () => {
      assert.equal(ns.canConnect(ns.hostAddress, port), true);
      assert.equal(ns.canConnect(ns.hostAddress, 5432), false);
      assert.equal(ns.canConnect('127.0.0.1', 5432), false);
      // Its view of the farm's data directory and the database's socket: empty.
      const inside = ns.prefix(hidden);
      for (const dir of [farm.root, '/run/postgresql'])
        assert.equal(execFileSync(inside[0]!, [...inside.slice(1), 'ls', '-A', dir]).toString(), '', dir);
    });

    it('builds a job and the farm publishes it, the log streamed up while the build runs', async () => {
      const b = startBuilder();
      await b.until(/Starting build daemon 'rb1'/);
      await submit('remote', [ticking('remote', 5)]);
      // The farm has the build's first lines while it is still running.
      await eventually('the live log on the farm', () => /tick-1/.test(farmLog('remote', 1)));
      assert.doesNotMatch(farmLog('remote', 1), /tick-5/);
      const job = await done('remote');
      assert.equal(job.status, 'success', job.reason ?? '');
      assert.deepEqual(published('remote'), ['remote-1.0-1.noarch.rpm']);
      assert.match(farmLog('remote', 1), /tick-5[\s\S]*received 1 products[\s\S]*published 1 package/);
      // The builder keeps nothing of a job it delivered.
      await b.until(/Finished task remote on rb1: success/);
      assert.deepEqual(readdirSync(join(builderHome, 'accepted')), []);
      b.child.kill('SIGTERM');
      assert.equal(await b.exited, 0, b.output());
    });

    it('kill -9 of the builder mid-build: started again, it hands the task back and builds it once', async () => {
      const b = startBuilder();
      await b.until(/Starting build daemon 'rb1'/);
      await submit('killed', [ticking('killed', 6)]);
      await eventually('the build under way', () => /tick-1/.test(farmLog('killed', 1)));
      b.child.kill('SIGKILL');
      await b.exited;
      const again = startBuilder();
      const job = await done('killed');
      assert.equal(job.status, 'success', job.reason ?? '');
      const attempts = await attemptsOf('killed');
      assert.equal(attempts.filter((a) => a.outcome === 'success').length, 1, JSON.stringify(attempts));
      assert.deepEqual(published('killed'), ['killed-1.0-1.noarch.rpm']);
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0, again.output());
    });

    it('kill -9 of the server mid-upload: the builder retries until it is back, and the task is built once', async () => {
      const b = startBuilder();
      await b.until(/Starting build daemon 'rb1'/);
      await submit('upload', [large('upload', 48)]);
      await uploading('upload');
      web.child.kill('SIGKILL');
      await web.exited;
      ({ child: web } = await startWeb(port));
      const job = await done('upload');
      assert.equal(job.status, 'success', job.reason ?? '');
      const attempts = await attemptsOf('upload');
      assert.deepEqual(
        attempts.map((a) => a.outcome),
        ['success'],
      );
      assert.deepEqual(published('upload'), ['upload-1.0-1.noarch.rpm']);
      await b.until(/Finished task upload on rb1: success/);
      assert.match(b.output(), /the farm is unavailable; retrying/);
      b.child.kill('SIGTERM');
      assert.equal(await b.exited, 0, b.output());
    });

    it('kill -9 of the builder mid-upload: started again, it delivers the build it kept instead of building again', async () => {
      const b = startBuilder();
      await b.until(/Starting build daemon 'rb1'/);
      await submit('kept', [large('kept', 48)]);
      await uploading('kept');
      b.child.kill('SIGKILL');
      await b.exited;
      const again = startBuilder();
      await again.until(/Finished task kept on rb1: success/);
      assert.match(again.output(), /Delivering the outcome 'success' of kept \(attempt 1\)/);
      const attempts = await attemptsOf('kept');
      assert.deepEqual(
        attempts.map((a) => a.outcome),
        ['success'],
      );
      assert.deepEqual(published('kept'), ['kept-1.0-1.noarch.rpm']);
      again.child.kill('SIGTERM');
      assert.equal(await again.exited, 0, again.output());
    });

    it('stops a remote build within seconds when the task is cancelled on the farm', async () => {
      const b = startBuilder();
      await b.until(/Starting build daemon 'rb1'/);
      await submit('cancelme', [ticking('cancelme', 60)]);
      await eventually('the build under way', () => /tick-1/.test(farmLog('cancelme', 1)));
      const cancel = await pkgforge(['cancel', 'cancelme'], farmEnv(farm, farmSettings));
      assert.equal(cancel.code, 0, cancel.stderr);
      await b.until(/Finished task cancelme on rb1: cancelled/);
      // Stopped long before its minute of ticks.
      assert.doesNotMatch(farmLog('cancelme', 1), /tick-30/);
      assert.equal((await getJobDetail(farm.registry.db, 'cancelme'))!.status, 'cancelled');
      b.child.kill('SIGTERM');
      assert.equal(await b.exited, 0, b.output());
    });

    it("fails the task with the farm's reason when the farm refuses a product (over its size limit)", async () => {
      const b = startBuilder('rb2', { ...builderEnv, PKGFORGE_BUILDER_TOKEN: token2 });
      await b.until(/Starting build daemon 'rb2'/);
      await submitTo(farm, 'toolarge', [buildRpm(specFor('toolarge'))], { platforms: ['el8'] });
      assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
      const job = await done('toolarge');
      assert.equal(job.status, 'fail');
      assert.match(job.tasks[0]!.reason ?? '', /delivery of this build was refused: .*over the limit of 1024 bytes/);
      b.child.kill('SIGTERM');
      assert.equal(await b.exited, 0, b.output());
    });
  });
}
