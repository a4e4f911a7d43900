/**
 * What state a builder is in and why a platform's waiting tasks wait: the rules the queue, the
 * builders page, `pkgforge builder list`, the API and the metrics all show, in one place.
 */
import { displayTime, isoTime } from './time.ts';

/** What the registry knows of a builder's health. */
export interface BuilderHealthFacts {
  lastHeartbeatAt: number | null;
  /** Set when its daemon stopped cleanly; cleared when one starts. */
  stoppedAt: number | null;
  /** Set when the daemon found its build environment incomplete (missing tools, no sandbox). */
  unableReason: string | null;
  /** The task in hand, if any. */
  currentTaskId: number | null;
}

/**
 * `building` / `idle`: its daemon runs (a heartbeat within the lease expiry), with or without a task.
 * `stopped`: its daemon stopped cleanly. `offline`: no heartbeat within the expiry and no clean stop
 * (killed, its host down, or never started). `unable`: its daemon found it cannot build.
 */
export const BUILDER_STATES = ['building', 'idle', 'stopped', 'offline', 'unable'] as const;
export type BuilderState = (typeof BUILDER_STATES)[number];

/** Whether the builder sent a heartbeat within `withinMs` (the lease expiry) of `nowMs`. */
export function isBuilderAlive(b: BuilderHealthFacts, nowMs: number, withinMs: number): boolean {
  return b.stoppedAt === null && b.lastHeartbeatAt !== null && nowMs - b.lastHeartbeatAt <= withinMs;
}

export function builderState(b: BuilderHealthFacts, nowMs: number, withinMs: number): BuilderState {
  // An unable daemon exits at once: what it said stays the thing to fix until one starts able.
  if (b.unableReason !== null) return 'unable';
  if (b.stoppedAt !== null) return 'stopped';
  if (!isBuilderAlive(b, nowMs, withinMs)) return 'offline';
  return b.currentTaskId !== null ? 'building' : 'idle';
}

/** Running and able to build. */
export function isBuilderHealthy(b: BuilderHealthFacts, nowMs: number, withinMs: number): boolean {
  const state = builderState(b, nowMs, withinMs);
  return state === 'building' || state === 'idle';
}

export interface PlatformBuilders {
  total: number;
  healthy: number;
  busy: number;
  unable: number;
  stopped: number;
  offline: number;
}

/** Counts a platform's builders by state. */
export function countBuilders(
  builders: readonly BuilderHealthFacts[],
  nowMs: number,
  withinMs: number,
): PlatformBuilders {
  const states = builders.map((b) => builderState(b, nowMs, withinMs));
  const count = (...of: BuilderState[]) => states.filter((s) => of.includes(s)).length;
  return {
    total: builders.length,
    healthy: count('building', 'idle'),
    busy: count('building'),
    unable: count('unable'),
    stopped: count('stopped'),
    offline: count('offline'),
  };
}

/**
 * Why a platform's waiting tasks are not being built, in words a user can act on. `platform` names
 * it (`deb12/x86_64`).
 */
export function whyWaiting(
  platform: string,
  active: boolean,
  builders: readonly BuilderHealthFacts[],
  nowMs: number,
  withinMs: number,
): string {
  if (!active) return `the platform ${platform} is not active`;
  if (builders.length === 0) return `no builder of ${platform} is registered`;
  const counts = countBuilders(builders, nowMs, withinMs);
  if (counts.healthy === 0) {
    const unable = builders.find((b) => b.unableReason !== null)?.unableReason;
    if (unable) return `the builders of ${platform} cannot build: ${unable}`;
    const lastStop = Math.max(...builders.map((b) => b.stoppedAt ?? -Infinity));
    const lastHeard = Math.max(
      ...builders.map((b) => (b.stoppedAt === null ? (b.lastHeartbeatAt ?? -Infinity) : -Infinity)),
    );
    if (lastStop === -Infinity && lastHeard === -Infinity)
      return `no builder of ${platform} is running; none has run yet (start one with \`pkgforge buildd --daemon\`)`;
    if (lastStop >= lastHeard)
      return `no builder of ${platform} is running; the last one stopped at ${displayTime(lastStop)}`;
    return `no builder of ${platform} is running; the last one was heard from at ${displayTime(lastHeard)} and did not stop cleanly`;
  }
  if (counts.busy === counts.healthy)
    return `all ${counts.healthy} running builder${counts.healthy === 1 ? ' is' : 's are'} busy`;
  return 'waiting for an idle builder to claim it';
}

/** How a daemon names its instance in the registry: its host and process, `buildhost[4242]`. */
export const instanceName = (host: string, pid: number): string => `${host}[${pid}]`;

/** The host and process of an instance name; a name in another form is all host. */
export function parseInstance(instance: string): { host: string; pid: number | null } {
  const m = /^(.*)\[(\d+)\]$/.exec(instance);
  return m ? { host: m[1]!, pid: Number(m[2]) } : { host: instance, pid: null };
}

/** What the registry holds of a builder, for its view. */
export interface BuilderFacts extends BuilderHealthFacts {
  name: string;
  platform: string;
  arch: string;
  /** Its daemon's instance as last said (`host[pid]`). */
  host: string | null;
  sandbox: string | null;
  currentJob: { id: string; attempt: number } | null;
}

/**
 * A builder as people and programs are shown it, the same for `pkgforge builder list --json`, the
 * builders page and `/api/v1/builders`: its state, the host by name, the job in hand by its id.
 */
export function builderView(b: BuilderFacts, nowMs: number, withinMs: number) {
  const state = builderState(b, nowMs, withinMs);
  const instance = b.host === null ? null : parseInstance(b.host);
  return {
    name: b.name,
    platform: b.platform,
    arch: b.arch,
    state,
    /** Builds with no sandbox (`sandbox: none`, an admin's choice): said beside the state. */
    unsandboxed: b.sandbox === 'none',
    healthy: state === 'building' || state === 'idle',
    host: instance?.host ?? null,
    pid: instance?.pid ?? null,
    currentJob: state === 'building' ? b.currentJob : null,
    lastHeartbeat: isoTime(b.lastHeartbeatAt),
    stoppedAt: isoTime(b.stoppedAt),
    unableToBuild: b.unableReason,
    sandbox: b.sandbox,
  };
}
export type BuilderView = ReturnType<typeof builderView>;
