// A no-op builder process: claims tasks of its builder and finishes them at once until none is
// left, then prints the claimed task ids. Runs the compiled program (`npm run build`).
// Usage: node bench/claim-worker.mjs REGISTRY BUILDER
import { builderIdentity, claimNextTask, finishAttempt } from '../dist/registry/attempts.js';
import { openRegistry } from '../dist/registry/registry.js';

const [arg, name] = process.argv.slice(2);
const registry = await openRegistry(
  arg.startsWith('postgres') ? { type: 'postgresql', connectionString: arg } : { type: 'sqlite', path: arg },
  { poolSize: 2 },
);
const me = await builderIdentity(registry.db, name);
const claimed = [];
for (;;) {
  const claim = await claimNextTask(registry, me, 'bench', 60_000);
  if (!claim) break;
  claimed.push(claim.taskId);
  await finishAttempt(registry, claim, 'success', null, null);
}
await registry.close();
process.stdout.write(`${JSON.stringify(claimed)}\n`);
