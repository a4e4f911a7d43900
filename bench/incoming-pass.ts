// One incoming pass in a process of its own, bundled like the program (bench/bundle.ts), so the
// benchmark reads the pass's own peak memory rather than a TypeScript loader's.
// Usage: node incoming-pass.mjs INCOMING ACCEPTED REGISTRY  → {"ms":…,"maxRssKb":…,"registered":…}
import { runIncomingPass } from '../src/incoming/processor.ts';
import { openRegistry } from '../src/registry/registry.ts';
import { silentLog } from '../src/util/log.ts';

import type { RegistryConfig } from '../src/registry/registry-config.ts';

const [incoming, accepted, arg] = process.argv.slice(2) as [string, string, string];
const config: RegistryConfig = arg.startsWith('postgres')
  ? { type: 'postgresql', connectionString: arg }
  : { type: 'sqlite', path: arg.replace(/^sqlite:/, '') };
const registry = await openRegistry(config, { migrate: true });
const started = performance.now();
const cpuBefore = process.cpuUsage();
const result = await runIncomingPass({ registry, incoming, accepted, waitForJobMs: 300_000, log: silentLog });
const ms = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
await registry.close();
const registered = result.outcomes.filter((o) => o.kind === 'registered').length;
const problems = result.outcomes.filter((o) => o.kind !== 'registered').map((o) => `${o.kind}: ${o.reason ?? ''}`);
process.stdout.write(
  `${JSON.stringify({ ms, cpuMs: (cpu.user + cpu.system) / 1000, userMs: cpu.user / 1000, sysMs: cpu.system / 1000, maxRssKb: process.resourceUsage().maxRSS, registered, problems: problems.slice(0, 3) })}\n`,
);
