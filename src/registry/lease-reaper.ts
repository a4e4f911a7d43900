import { anyLeaseExpired, requeueAbandoned } from './attempts.ts';
import type { Registry } from './registry.ts';
import { transientRegistryError } from './retry.ts';
import type { Log } from '../util/log.ts';

/**
 * How often every long-running process (the incoming daemon, and each build daemon, which knows the
 * farm's lease_expiry) looks for expired leases. A dead builder's task is back in the queue within
 * lease_expiry + this, whoever is running, without waiting for an idle builder of the same platform
 * to poll.
 */
export const REAP_EVERY_MS = 4000;

/**
 * A build daemon's reaping interval: a quarter of the lease, between 1 and 30 s. Precision finer
 * than the lease buys nothing, and an idle farm's load is its reapers: 64 builders looking every
 * 4 s cost 16 queries a second, every 30 s two (a dead builder's task is back within 1.25 ×
 * lease_expiry at worst, and sooner with many builders, whose looks fall at random moments).
 */
export function reapEveryMs(leaseExpiryMs: number): number {
  return Math.min(30_000, Math.max(1000, leaseExpiryMs / 4));
}

/**
 * Requeues expired leases every `everyMs` until the returned function is called. One look is one
 * indexed query when nothing expired; several processes reaping at once is safe (each update
 * repeats its conditions). A registry that is away is said once, not every few seconds.
 */
export function startLeaseReaper(
  registry: Registry,
  log: Log,
  everyMs = REAP_EVERY_MS,
  /** Start at a random point of the interval (many builders), rather than after one interval (the incoming daemon). */
  randomStart = false,
): () => Promise<void> {
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
  let timer: NodeJS.Timeout | undefined;
  // Builders start at random points of the interval, so many reapers spread their looks out.
  const first = setTimeout(
    () => {
      timer = setInterval(() => (running ??= look().finally(() => (running = null))), everyMs);
      timer.unref();
    },
    (randomStart ? Math.random() : 0) * everyMs,
  );
  first.unref();
  return async () => {
    clearTimeout(first);
    clearInterval(timer);
    await running;
  };
}
