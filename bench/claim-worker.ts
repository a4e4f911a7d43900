// A no-op builder process: claims tasks of its builder and finishes them at once until none is
// left, then prints the claimed task ids and when it claimed its first and last. bench/claim.ts
// bundles it (bench/bundle.ts). Usage: node claim-worker.mjs REGISTRY BUILDER
import { builderIdentity, claimNextTask, finishAttempt } from '../src/registry/attempts.ts';
import { openRegistry } from '../src/registry/registry.ts';

const [arg, name] = process.argv.slice(2);
const registry = await openRegistry(
  arg!.startsWith('postgres') ? { type: 'postgresql', connectionString: arg } : { type: 'sqlite', path: arg! },
  { poolSize: 2 },
);
const me = await builderIdentity(registry.db, name!);
if (!me) throw new Error(`no builder ${name}`);
const claimed: number[] = [];
let first = Date.now();
let last = first;
for (;;) {
  const claim = await claimNextTask(registry, me, 'bench', 60_000);
  if (!claim) break;
  if (claimed.length === 0) first = Date.now();
  claimed.push(claim.taskId);
  await finishAttempt(registry, claim, 'success', null, null);
  last = Date.now();
}
await registry.close();
process.stdout.write(`${JSON.stringify({ claimed, first, last })}\n`);
