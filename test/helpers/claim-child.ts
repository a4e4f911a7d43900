/** Claims tasks of one builder until none is left and prints their ids. Args: REGISTRY BUILDER_NAME */
import { builderIdentity, claimNextTask, finishAttempt } from '../../src/registry/attempts.ts';
import { openRegistry } from '../../src/registry/registry.ts';

const [arg, name] = process.argv.slice(2) as [string, string];
const registry = await openRegistry(
  arg.startsWith('postgres') ? { type: 'postgresql', connectionString: arg } : { type: 'sqlite', path: arg },
  { poolSize: 2 },
);
const me = (await builderIdentity(registry.db, name))!;
const claimed: number[] = [];
for (;;) {
  const claim = await claimNextTask(registry, me, 'test', 60_000);
  if (!claim) break;
  claimed.push(claim.taskId);
  await finishAttempt(registry, claim, 'success', null, null);
}
await registry.close();
process.stdout.write(`${JSON.stringify(claimed)}\n`);
