import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { normaliseManifest } from '../../src/core/manifest.ts';
import { ErrorCode, isPkgForgeError } from '../../src/util/errors.ts';
import { findJob, insertJobIn } from '../../src/registry/jobs.ts';
import { openRegistry, type Registry } from '../../src/registry/registry.ts';
import { WriteBatch } from '../../src/registry/write-batch.ts';
import { DIALECTS, makeRegistry, type TestRegistry } from '../helpers/registries.ts';

const manifest = (id: string) =>
  normaliseManifest(
    { id, bucket: 'devel', packages: [{ file: 'a.src.rpm', type: 'SRPM', size: 1, sha1sum: 'a'.repeat(40) }] },
    id,
  );
const facts = { submitter: null, submittedAt: 1, incomingEntry: null };

for (const dialect of DIALECTS) {
  describe(`a write batch (group commit) on ${dialect}`, () => {
    let t: TestRegistry;
    // A second connection to the same registry: it sees only what has committed.
    let other: Registry;
    before(async () => {
      t = await makeRegistry(dialect);
      other = await openRegistry(t.config);
    });
    after(async () => {
      await other.close();
      await t.dispose();
    });

    it('runs writes asked for together in one transaction, and settles each only after it commits', async () => {
      const batch = new WriteBatch(t.registry, { writers: () => 3, lingerMs: 60_000 });
      const seenByOthers: boolean[] = [];
      const writes = ['b1', 'b2', 'b3'].map((id, i) =>
        batch.run(async (trx) => {
          if (i > 0) {
            // The previous write is visible inside the batch's transaction, not yet outside it.
            assert.ok(await findJob(trx, `b${i}`), `b${i} inside the transaction`);
            seenByOthers.push((await findJob(other.db, `b${i}`)) !== null);
          }
          return (await insertJobIn(trx, manifest(id), facts)).id;
        }),
      );
      // Three writers and three writes: the batch commits without waiting out its linger.
      assert.deepEqual(await Promise.all(writes), ['b1', 'b2', 'b3']);
      assert.deepEqual(seenByOthers, [false, false]);
      for (const id of ['b1', 'b2', 'b3']) assert.ok(await findJob(other.db, id), `${id} committed`);
    });

    it('gives a failing write its own error and commits the others of its batch', async () => {
      const batch = new WriteBatch(t.registry, { writers: () => 3, lingerMs: 60_000 });
      await batch.run((trx) => insertJobIn(trx, manifest('taken'), facts));
      const results = await Promise.allSettled(
        ['c1', 'taken', 'c2'].map((id) => batch.run((trx) => insertJobIn(trx, manifest(id), facts))),
      );
      assert.equal(results[0]!.status, 'fulfilled');
      assert.equal(results[2]!.status, 'fulfilled');
      assert.equal(results[1]!.status, 'rejected');
      assert.ok(isPkgForgeError((results[1] as PromiseRejectedResult).reason, ErrorCode.jobId));
      for (const id of ['c1', 'c2']) assert.ok(await findJob(other.db, id), `${id} committed`);
    });

    it('commits a lone write after its linger when fewer writers come than expected', async () => {
      const batch = new WriteBatch(t.registry, { writers: () => 5, lingerMs: 1 });
      const job = await batch.run((trx) => insertJobIn(trx, manifest('alone'), facts));
      assert.equal(job.id, 'alone');
      assert.ok(await findJob(other.db, 'alone'));
    });
  });
}
