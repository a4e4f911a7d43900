// A no-op remote builder: claims tasks through the farm's builder API (web/routes/builder-api.ts)
// and reports each failed at once ("no-op"), as `pkgforge buildd --server` would without building.
// bench/claim.ts bundles it. Usage: node claim-http-worker.mjs SERVER TOKEN drain|idle
//   drain: claims without waiting until none is left, then prints the claimed task ids and when it
//          claimed its first and last;
//   idle:  long-polls (30 s) until killed, as an idle remote daemon does.
import { FarmClient } from '../src/buildd/farm-client.ts';

const [server, token, mode] = process.argv.slice(2);
const farm = new FarmClient(server!, token!);
const claimed: number[] = [];
let first = Date.now();
let last = first;
const stop = new AbortController();
process.once('SIGTERM', () => stop.abort());
while (!stop.signal.aborted) {
  const rc = await farm.claim('bench', mode === 'idle' ? 30 : 0, stop.signal).catch((err: Error) => {
    if (stop.signal.aborted) return null;
    throw err;
  });
  if (!rc) {
    if (mode === 'idle') continue;
    break;
  }
  if (claimed.length === 0) first = Date.now();
  claimed.push(rc.claim.taskId);
  await farm.finish(rc.claim, {
    status: 'fail',
    reason: 'no-op',
    hostname: 'bench',
    starttime: Math.floor(Date.now() / 1000),
    phases: ['init'],
    success: [],
    failures: [],
    products: [],
  });
  last = Date.now();
}
process.stdout.write(`${JSON.stringify({ claimed, first, last })}\n`);
