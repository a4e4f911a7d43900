import { listQueues, type PlatformQueue } from '../registry/queue.ts';
import type { Registry } from '../registry/registry.ts';

/** How old a shared view of the queue may be. */
const MAX_AGE_MS = 1000;

const shared = new WeakMap<Registry, Map<number, { at: number; queues: Promise<PlatformQueue[]> }>>();

/**
 * Every platform's queue (registry/queue.ts: listQueues), read at most once a second per registry
 * and list length and shared by every request meanwhile: 50 clients polling the queue page cost one
 * read a second rather than one each. On SQLite a read of a long queue blocks the whole server
 * while it runs (its totals count every waiting task), so this is what keeps the other requests
 * prompt. A read that fails is not kept.
 */
export function sharedQueues(
  registry: Registry,
  healthyWithinMs: number,
  limitPerPlatform: number,
  now = Date.now(),
): Promise<PlatformQueue[]> {
  const byLimit = shared.get(registry) ?? new Map<number, { at: number; queues: Promise<PlatformQueue[]> }>();
  shared.set(registry, byLimit);
  const kept = byLimit.get(limitPerPlatform);
  if (kept && now - kept.at < MAX_AGE_MS) return kept.queues;
  const queues = listQueues(registry.db, now, healthyWithinMs, limitPerPlatform);
  byLimit.set(limitPerPlatform, { at: now, queues });
  queues.catch(() => byLimit.get(limitPerPlatform)?.queues === queues && byLimit.delete(limitPerPlatform));
  return queues;
}
