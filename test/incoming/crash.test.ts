import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, copyFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { getJobDetail } from '../../src/registry/jobs.ts';
import { addPlatforms, farmEnv, makeFarm, PKGFORGE_ARGS, type TestFarm, submitTo } from '../helpers/farm.ts';
import { digest } from '../helpers/jobs.ts';
import { DIALECTS } from '../helpers/registries.ts';
import { srpm } from '../helpers/srpm.ts';

for (const dialect of DIALECTS) {
  describe(`an incoming processor killed with SIGKILL on ${dialect}`, () => {
    let farm: TestFarm;
    let big: string;
    before(async () => {
      farm = await makeFarm(dialect);
      await addPlatforms(farm, 'el9/x86_64*', 'el9/aarch64*');
      // A real SRPM with 48 MiB appended: the header still validates and the copy takes a while,
      // so kills land in every stage.
      big = join(farm.root, 'big-1.0-1.src.rpm');
      copyFileSync(srpm('big'), big);
      for (let i = 0; i < 48; i++) appendFileSync(big, Buffer.alloc(1024 * 1024, i));
    });
    after(() => farm.dispose());

    for (const delayMs of [0, 15, 40, 80, 150, 300]) {
      it(`leaves nothing the next pass cannot finish (killed ${delayMs} ms into the pass)`, async () => {
        const id = `killed-${delayMs}`;
        await submitTo(farm, id, [big]);
        // One pass of the real program; the clock starts when it says it is processing the entry.
        const child = spawn(process.execPath, [...PKGFORGE_ARGS, 'incoming'], {
          env: { ...process.env, ...farmEnv(farm) },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let out = '';
        await new Promise<void>((resolve, reject) => {
          child.stderr.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes(`"msg":"Processing ${join(farm.incoming, id)}"`)) resolve();
          });
          child.once('exit', (code) => reject(new Error(`the pass exited (${code}) before it started: ${out}`)));
        });
        const exited = once(child, 'exit');
        await sleep(delayMs);
        child.kill('SIGKILL');
        await exited;

        // The next pass finishes whatever was in flight, without waiting for the dead processor's
        // lock to go stale (30 s): at most the 2 s it allows a new holder to write its note.
        const started = Date.now();
        let result = await runIncomingPass(farm.ctx());
        while (!result.ran && Date.now() - started < 5_000) {
          await sleep(250);
          result = await runIncomingPass(farm.ctx());
        }
        assert.ok(result.ran, "the dead processor's lock must not block the next pass");
        const job = await getJobDetail(farm.registry.db, id);
        assert.equal(job?.status, 'registered', `${out} ${JSON.stringify(result.outcomes)}`);
        assert.equal(job.tasks.length, 2);
        const copy = join(farm.accepted, id, 'big-1.0-1.src.rpm');
        assert.equal(digest(copy, 'sha256'), digest(big, 'sha256'));
        assert.deepEqual(
          readdirSync(farm.accepted).filter((n) => n.startsWith('.staging')),
          [],
        );
        assert.ok(!existsSync(join(farm.incoming, id)));
        assert.deepEqual(readdirSync(farm.incoming), []);
      });
    }
  });
}
