import { anyLeaseExpired, requeueAbandoned } from './attempts.ts';
import type { Registry } from './registry.ts';
import { transientRegistryError } from './retry.ts';
import type { Log } from '../util/log.ts';

/**
 * How often every long-running process (each build daemon, the incoming daemon) looks for expired
 * leases. A dead builder's task is back in the queue within lease_expiry + this, whoever is
 * running, without waiting for an idle builder of the same platform to poll.
 */
export const REAP_EVERY_MS = 4000;

/**
 * Requeues expired leases every `everyMs` until the returned function is called. One look is one
 * indexed query when nothing expired; several processes reaping at once is safe (each update
 * repeats its conditions). A registry that is away is said once, not every few seconds.
 */
export function startLeaseReaper(registry: Registry, log: Log, everyMs = REAP_EVERY_MS): () => Promise<void> {
  let running: Promise<void> | null = null;
  let away = false;
  const look = async () => {
    try {
      const requeued = (await anyLeaseExpired(registry)) ? await requeueAbandoned(registry) : [];
      if (requeued.length > 0)
        log.info(
          { tasks: requeued },
          `requeued ${requeued.length} task${requeued.length === 1 ? '' : 's'} whose builder stopped renewing its lease`,
        );
      away = false;
    } catch (err) {
      if (!away)
        log.warn(
          { err: (err as Error).message },
          transientRegistryError(err)
            ? 'cannot look for expired leases: the registry is unavailable'
            : 'looking for expired leases failed',
        );
      away = true;
    }
  };
  const timer = setInterval(() => {
    running ??= look().finally(() => (running = null));
  }, everyMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
