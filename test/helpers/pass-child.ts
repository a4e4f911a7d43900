/**
 * A process that runs one incoming pass, for tests that kill it part-way or run it with fewer
 * privileges. Args: INCOMING ACCEPTED REGISTRY [CONTEXT-JSON] (e.g. '{"waitForJobMs":0}').
 */
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { openRegistry } from '../../src/registry/registry.ts';
import { silentLog } from '../../src/util/log.ts';

const [incoming, accepted, arg, overrides] = process.argv.slice(2) as [string, string, string, string | undefined];
const registry = await openRegistry(
  arg.startsWith('postgres') ? { type: 'postgresql', connectionString: arg } : { type: 'sqlite', path: arg },
  { migrate: true },
);
process.stdout.write('pass-started\n');
const result = await runIncomingPass({
  registry,
  incoming,
  accepted,
  waitForJobMs: 300_000,
  log: silentLog,
  ...(overrides ? (JSON.parse(overrides) as object) : {}),
});
process.stdout.write(`${JSON.stringify(result)}\n`);
await registry.close();
process.stdout.write('pass-done\n');
