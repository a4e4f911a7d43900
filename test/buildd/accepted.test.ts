import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { listAttempts } from '../../src/registry/attempts.ts';
import { addBuilder } from '../../src/registry/builders.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import {
  addPlatforms,
  eventually,
  farmEnv,
  makeFarm,
  spawnPkgforge,
  type TestFarm,
  submitTo,
} from '../helpers/farm.ts';
import { srpm } from '../helpers/srpm.ts';

// The registry accepts a build before it is published; a builder that dies after that is replaced by
// one that publishes the same build, so a task's repository packages come from one build only.
describe('a build accepted for publishing whose builder dies', () => {
  let farm: TestFarm;
  let env: Record<string, string>;
  let publishLog: string;
  let hold: string;
  before(async () => {
    farm = await makeFarm('sqlite');
    await addPlatforms(farm, 'el9/x86_64*');
    await addBuilder(farm.registry.db, 'a1', 'el9', 'x86_64');
    await addBuilder(farm.registry.db, 'a2', 'el9', 'x86_64');
    publishLog = join(farm.root, 'published.log');
    hold = join(farm.root, 'hold');
    env = farmEnv(farm, {
      PKGFORGE_LEASE_RENEWAL: '1',
      PKGFORGE_LEASE_EXPIRY: '3',
    });
    mkdirSync(join(farm.root, 'etc'), { recursive: true });
    // Each published file is written down; while `hold` exists, publishing then hangs (the builder dies in it).
    writeFileSync(
      join(farm.root, 'etc', 'buildd.yml'),
      `publishers:\n  - command:\n      command: [sh, -c, 'for f; do echo "$f" >> ${publishLog}; done; if [ -e ${hold} ]; then sleep 30; fi', publish]\n`,
    );
  });
  after(async () => farm.dispose());

  it('is published by the next claim from the same products, not built again', async () => {
    await submitTo(farm, 'once', [srpm('once')]);
    assert.equal((await runIncomingPass(farm.ctx())).outcomes[0]?.kind, 'registered');
    writeFileSync(hold, '');
    const first = spawnPkgforge(['buildd', '--name', 'a1', '--daemon'], env);
    await eventually('publishing to start', () => existsSync(publishLog), 60_000);
    first.child.kill('SIGKILL');
    await first.exited;
    rmSync(hold);

    const second = spawnPkgforge(['buildd', '--name', 'a2', '--daemon'], env);
    try {
      const job = await eventually(
        'the task to succeed',
        async () => {
          const j = await getJobDetail(farm.registry.db, 'once');
          return j?.tasks[0]?.status === 'success' ? j : null;
        },
        60_000,
      );
      const attempts = await listAttempts(farm.registry.db, job.tasks[0]!.id);
      assert.deepEqual(
        attempts.map((a) => [a.builder, a.outcome]),
        [
          ['a1', 'lease expired'],
          ['a2', 'success'],
        ],
      );
      const logs = [1, 2].map((n) =>
        readFileSync(join(farm.results, 'once', 'el9-x86_64', `attempt-${n}`, 'build.log'), 'utf8'),
      );
      assert.equal(logs.join('').match(/building once-/g)?.length, 1, 'built once');
      assert.match(
        logs[1]!,
        /accepted the build of attempt 1 before its builder stopped; publishing its products, not building again[\s\S]*finished: success/,
      );
      // Published again after the crash, but the same build's files: attempt 2 holds links to attempt 1's.
      const published = readFileSync(publishLog, 'utf8').trim().split('\n');
      assert.equal(published.length, 2, published.join('\n'));
      assert.equal(basename(published[0]!), basename(published[1]!));
      assert.match(published[0]!, /attempt-1\//);
      assert.match(published[1]!, /attempt-2\//);
      assert.deepEqual(readFileSync(published[0]!), readFileSync(published[1]!));
      // The attempt becomes the current results just after the registry records its success.
      await eventually(
        'the current results',
        () => existsSync(join(farm.results, 'once', 'el9-x86_64', basename(published[0]!))),
        10_000,
      );
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
