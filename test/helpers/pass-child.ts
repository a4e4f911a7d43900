/** A process that runs one incoming pass, for tests that kill it part-way. Args: INCOMING ACCEPTED REGISTRY */
import { runIncomingPass } from '../../src/incoming/processor.ts';
import { openRegistry } from '../../src/registry/registry.ts';
import { silentLog } from '../../src/util/log.ts';

const [incoming, accepted, arg] = process.argv.slice(2) as [string, string, string];
const registry = await openRegistry(arg.startsWith('postgres') ? { type: 'postgresql', connectionString: arg } : { type: 'sqlite', path: arg }, { migrate: true });
process.stdout.write('pass-started\n');
const result = await runIncomingPass({ registry, incoming, accepted, waitForJobMs: 300_000, log: silentLog });
process.stdout.write(`${JSON.stringify(result)}\n`);
await registry.close();
process.stdout.write('pass-done\n');
