/**
 * When a builder counts as running and able to build, and why a platform's waiting tasks wait: the
 * rules the queue, the builders page, the API and the metrics all show, in one place.
 */

/** What the registry knows of a builder's health. */
export interface BuilderHealthFacts {
  lastHeartbeatAt: number | null;
  /** Set when the daemon found its build environment incomplete (missing tools, no sandbox). */
  unableReason: string | null;
}

/** Whether the builder sent a heartbeat within `withinMs` (the lease expiry) of `nowMs`. */
export function isBuilderAlive(b: BuilderHealthFacts, nowMs: number, withinMs: number): boolean {
  return b.lastHeartbeatAt !== null && nowMs - b.lastHeartbeatAt <= withinMs;
}

/** Alive and able to build. */
export function isBuilderHealthy(b: BuilderHealthFacts, nowMs: number, withinMs: number): boolean {
  return b.unableReason === null && isBuilderAlive(b, nowMs, withinMs);
}

export interface PlatformBuilders {
  total: number;
  healthy: number;
  busy: number;
  unable: number;
}

/** Counts a platform's builders by health. */
export function countBuilders(
  builders: readonly (BuilderHealthFacts & { busy: boolean })[],
  nowMs: number,
  withinMs: number,
): PlatformBuilders {
  const healthy = builders.filter((b) => isBuilderHealthy(b, nowMs, withinMs));
  return {
    total: builders.length,
    healthy: healthy.length,
    busy: healthy.filter((b) => b.busy).length,
    unable: builders.filter((b) => b.unableReason !== null).length,
  };
}

/** Why a platform's waiting tasks are not being built, in words a user can act on. */
export function whyWaiting(active: boolean, counts: PlatformBuilders, firstUnableReason: string | null): string {
  if (!active) return 'the platform is not active';
  if (counts.total === 0) return 'no builder is registered for this platform';
  if (counts.healthy === 0 && firstUnableReason !== null) return `the builders cannot build: ${firstUnableReason}`;
  if (counts.healthy === 0) return 'no builder for this platform is running (no recent heartbeat)';
  if (counts.busy === counts.healthy)
    return `all ${counts.healthy} running builder${counts.healthy === 1 ? ' is' : 's are'} busy`;
  return 'waiting for an idle builder to claim it';
}
