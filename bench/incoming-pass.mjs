// One incoming pass in a process of its own, from the compiled program (`npm run build`), so the
// benchmark reads the pass's own peak memory rather than a TypeScript loader's.
// Usage: node bench/incoming-pass.mjs INCOMING ACCEPTED REGISTRY  → {"ms":…,"maxRssKb":…,"registered":…}
import { runIncomingPass } from '../dist/incoming/processor.js';
import { openRegistry } from '../dist/registry/registry.js';
import { silentLog } from '../dist/util/log.js';

const [incoming, accepted, arg] = process.argv.slice(2);
const config = arg.startsWith('postgres')
  ? { type: 'postgresql', connectionString: arg }
  : { type: 'sqlite', path: arg.replace(/^sqlite:/, '') };
const registry = await openRegistry(config, { migrate: true });
const started = performance.now();
const result = await runIncomingPass({ registry, incoming, accepted, waitForJobMs: 300_000, log: silentLog });
const ms = performance.now() - started;
await registry.close();
const registered = result.outcomes.filter((o) => o.kind === 'registered').length;
const problems = result.outcomes.filter((o) => o.kind !== 'registered').map((o) => `${o.kind}: ${o.reason ?? ''}`);
process.stdout.write(
  `${JSON.stringify({ ms, maxRssKb: process.resourceUsage().maxRSS, registered, problems: problems.slice(0, 3) })}\n`,
);
