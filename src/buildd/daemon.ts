import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { instanceName } from '../core/builder-health.ts';
import { attemptPath } from '../core/results-layout.ts';
import {
  builderIdentity,
  claimNextTask,
  claimsHeldBy,
  builderStopped,
  finishAttempt,
  idleHeartbeat,
  releaseClaim,
  requeueAbandoned,
  touchBuilder,
  type BuilderIdentity,
  type Claim,
} from '../registry/attempts.ts';
import { reapEveryMs, startLeaseReaper } from '../registry/lease-reaper.ts';
import type { Registry } from '../registry/registry.ts';
import { transientRegistryError, withRegistryRetry } from '../registry/retry.ts';
import { ErrorCode, PkgForgeError, messageOf } from '../util/errors.ts';
import { keepLease, type Lease } from './lease.ts';
import {
  buildTask,
  closeAttempt,
  keepOutcome,
  readPendingOutcome,
  resumeAttempt,
  type PendingOutcome,
} from './attempt.ts';
import { hostProblems, leftByThisHost } from './host-check.ts';
import {
  completeAttempt,
  finished,
  publishAdopted,
  reportBase,
  retryUntilLease,
  RETRY_FIRST_MS,
  RETRY_MAX_MS,
  type BuilddContext,
  type StopSignals,
  type TaskReport,
} from './completion.ts';
import { endLeftovers } from './leftovers.ts';

export type { BuilddContext, StopSignals, TaskReport } from './completion.ts';

/** How long a daemon waits after an unexpected failure before it claims again. */
const ERROR_PAUSE_MS = 5000;

const pause = (ms: number, signal: AbortSignal) => sleep(ms, undefined, { signal }).catch(() => {});

/**
 * Checks everything a builder needs before it claims anything: the builder exists, its platform is
 * active, accepted is readable, results writable, every configured tool present. A missing tool is
 * recorded on the builder (shown as "unable to build"), not just logged.
 */
export async function preflightBuilder(
  ctx: BuilddContext,
): Promise<BuilderIdentity & { platform: string; arch: string }> {
  const me = await builderIdentity(ctx.registry.db, ctx.name);
  if (!me)
    throw new PkgForgeError(
      ErrorCode.notFound,
      `There is no builder named '${ctx.name}' in the registry (add it with \`pkgforge builder add --name ${ctx.name} --platform P --architecture A\`)`,
    );
  if (!me.active)
    throw new PkgForgeError(
      ErrorCode.usage,
      `The platform ${me.platform}/${me.arch} of builder '${ctx.name}' is not active (\`pkgforge platform activate\`)`,
    );
  const { problems, sandbox } = await hostProblems(ctx, me);
  const unable = problems.length > 0 ? `The build environment is incomplete: ${problems.join('; ')}` : null;
  await idleHeartbeat(ctx.registry.db, me.id, ctx.host ?? ownInstance(), unable, sandbox.sandbox?.kind ?? null);
  if (unable) throw new PkgForgeError(ErrorCode.directory, `Builder '${ctx.name}': ${unable}`);
  if (sandbox.sandbox?.kind === 'none')
    ctx.log.warn(
      `Builder '${ctx.name}' builds WITHOUT a sandbox (sandbox: none): every submitter's build scripts run with this daemon's powers`,
    );
  else ctx.log.info(`Builder '${ctx.name}': ${sandbox.sandbox!.describe()}`);
  return me;
}

/**
 * Builds one claimed task with a lease renewed by heartbeats, then publishes and records it. The
 * outcome is durable before anyone is told: it is kept in the attempt's directory the moment the
 * build ends, publishing waits for the registry to confirm that this attempt still holds the task,
 * and recording is retried for as long as the lease could still be valid. An outcome that could
 * not be recorded stays on disk for the next look (`recoverOwnTasks`).
 */
export async function runClaim(ctx: BuilddContext, claim: Claim, signals: StopSignals): Promise<TaskReport> {
  const lease = keepLease(ctx, claim, signals.abort);
  try {
    ctx.log.info(
      { job: claim.jobId, platform: claim.platform, arch: claim.arch, attempt: claim.attempt },
      `Starting task ${claim.jobId} on ${ctx.name}`,
    );
    const adopted = await publishAdopted(ctx, claim, lease, signals);
    if (adopted) return adopted;
    if ((await ctx.settings.sandbox(ctx.name, claim.platform)).sandbox?.kind === 'none')
      ctx.log.warn({ job: claim.jobId }, `Building ${claim.jobId} WITHOUT a sandbox (sandbox: none)`);
    const built = await buildTask(claim, ctx.dirs, ctx.settings, lease.signal);
    if (built.status === 'stopped') {
      await closeAttempt(built.attempt).catch((err) =>
        ctx.log.error({ job: claim.jobId, err: messageOf(err) }, 'could not close the attempt'),
      );
      return await handBack(ctx, claim, lease, signals, built.reason ?? 'stopped');
    }
    const pending: Omit<PendingOutcome, 'attempt' | 'info'> = {
      status: built.status,
      reason: built.reason,
      published: false,
    };
    await keepOutcome(built.attempt, pending);
    return await completeAttempt(ctx, claim, built.attempt, pending, lease, signals);
  } finally {
    lease.stop();
  }
}

/** A stopped build: the task goes back to the queue (unless it was cancelled or taken meanwhile). */
async function handBack(
  ctx: BuilddContext,
  claim: Claim,
  lease: Lease,
  signals: StopSignals,
  reason: string,
): Promise<TaskReport> {
  const base = reportBase(claim);
  const heard = lease.heard();
  if (heard === 'cancelled') return finished(ctx, { ...base, status: 'cancelled', reason: 'the task was cancelled' });
  if (heard === 'lost') return finished(ctx, { ...base, status: 'refused', reason });
  try {
    const released = await withRegistryRetry(
      () => releaseClaim(ctx.registry, claim, reason),
      retryUntilLease(ctx, lease, signals),
    );
    lease.stop();
    return finished(ctx, {
      ...base,
      status: released ? 'requeued' : 'refused',
      reason: released ? reason : 'the attempt is no longer current',
    });
  } catch (err) {
    if (!transientRegistryError(err)) throw err;
    // Said as it is: the registry did not hear it, so the task returns when its lease runs out.
    ctx.log.error(
      { job: claim.jobId, err: messageOf(err) },
      `Could not hand task ${claim.jobId} back to the queue: the registry is unavailable; it returns to the queue when its lease expires`,
    );
    return finished(ctx, { ...base, status: 'unrecorded', reason });
  }
}

/**
 * Finds the tasks this builder holds in the registry: an attempt whose outcome a run of this
 * daemon kept but could not record is published (if it had not been) and recorded, instead of
 * being built again; any other is handed back to the queue. Returns the reports of those recorded.
 */
export async function recoverOwnTasks(
  ctx: BuilddContext,
  me: BuilderIdentity,
  signals: StopSignals,
): Promise<{ reports: TaskReport[]; unsettled: boolean }> {
  const reports: TaskReport[] = [];
  let unsettled = false;
  for (const claim of await claimsHeldBy(ctx.registry, me)) {
    const pending = await readPendingOutcome(ctx.dirs.results, claim);
    if (!pending) continue;
    ctx.log.warn(
      { job: claim.jobId, attempt: claim.attempt },
      `Recording the outcome '${pending.status}' of ${claim.jobId} (attempt ${claim.attempt}) that was kept but not recorded`,
    );
    const lease = keepLease(ctx, claim, signals.abort);
    try {
      const attempt = await resumeAttempt(claim, ctx.dirs, ctx.settings, pending, lease.signal);
      const report = await completeAttempt(ctx, claim, attempt, pending, lease, signals);
      if (report.status === 'unrecorded') unsettled = true;
      reports.push(report);
    } catch (err) {
      if (transientRegistryError(err)) throw err;
      // A kept outcome that cannot be completed must not stop the daemon at every start: the task
      // ends with the reason, and the daemon goes on.
      const reason = `the outcome kept by attempt ${claim.attempt} could not be recorded: ${messageOf(err)}`;
      ctx.log.error({ job: claim.jobId, attempt: claim.attempt, err: messageOf(err) }, reason);
      await finishAttempt(
        ctx.registry,
        claim,
        'fail',
        reason,
        attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt),
      );
      reports.push(finished(ctx, { ...reportBase(claim), status: 'fail', reason }));
    } finally {
      lease.stop();
    }
  }
  if (unsettled) return { reports, unsettled };
  const reset = await requeueAbandoned(ctx.registry, { builderId: me.id });
  if (reset.length > 0) ctx.log.warn({ tasks: reset }, 'requeued tasks this builder left unfinished');
  return { reports, unsettled };
}

/** How this daemon names itself in the registry: its host and process, e.g. `buildhost[4242]`. */
export const ownInstance = () => instanceName(hostname(), process.pid);

/**
 * Whether another running instance of this builder holds a task under a live lease. A daemon
 * takes over its own unfinished attempts at start, but must not take a healthy build from a
 * second process started under the same name.
 */
async function busyElsewhere(
  registry: Registry,
  me: BuilderIdentity,
): Promise<{ job: string; host: string | null; attempt: number } | null> {
  for (const held of await claimsHeldBy(registry, me)) {
    if (!held.leaseLive || leftByThisHost(held.host)) continue;
    return { job: held.jobId, host: held.host, attempt: held.attempt };
  }
  return null;
}

export interface BuilddLoopOptions extends StopSignals {
  /** Build at most one task and return (`pkgforge buildd` without --daemon). */
  once?: boolean;
  onTask?: (report: TaskReport) => void;
}

/** Retries while the registry is away at start: for ever for a daemon (until told to stop), briefly for a one-shot run. */
function waitForRegistry(ctx: BuilddContext, options: BuilddLoopOptions) {
  let said = false;
  return {
    attempts: options.once ? 5 : Infinity,
    delayMs: RETRY_FIRST_MS,
    maxDelayMs: RETRY_MAX_MS,
    signal: options.stop,
    onRetry: (err: Error, _n: number, _ms: number, kind: string) =>
      void (
        said || ((said = true), ctx.log.warn({ err: err.message }, `registry unavailable (${kind}); waiting for it`))
      ),
  };
}

/**
 * A daemon's start: preflight (waiting for the registry when it is away), refusing to run beside a
 * live instance of the same builder, ending what a killed earlier one left, and recording the
 * outcomes it kept. Null when told to stop while waiting.
 */
async function startBuilder(
  ctx: BuilddContext,
  options: BuilddLoopOptions,
  report: (r: TaskReport) => void,
): Promise<{ me: BuilderIdentity & { platform: string; arch: string }; unsettled: boolean } | null> {
  const wait = waitForRegistry(ctx, options);
  let me: Awaited<ReturnType<typeof preflightBuilder>>;
  let busy: Awaited<ReturnType<typeof busyElsewhere>>;
  try {
    me = await withRegistryRetry(() => preflightBuilder(ctx), wait);
    busy = await withRegistryRetry(() => busyElsewhere(ctx.registry, me), wait);
  } catch (err) {
    // Told to stop while waiting for the registry: a clean stop.
    if (options.stop.aborted && transientRegistryError(err)) return null;
    throw err;
  }
  if (busy) {
    throw new PkgForgeError(
      ErrorCode.locked,
      `Builder '${ctx.name}' is already building job ${busy.job} on ${busy.host ?? 'another host'} (attempt ${busy.attempt}); run one daemon per builder name`,
    );
  }
  // No other instance runs: whatever an earlier one started and left (a kill -9) is ended and removed.
  const setup = await ctx.settings.sandbox(ctx.name, me.platform);
  if (setup.sandbox) await endLeftovers(setup.workspaces, setup.sandbox, ctx.log);
  const recovered = await withRegistryRetry(() => recoverOwnTasks(ctx, me, options), wait);
  recovered.reports.forEach(report);
  return { me, unsettled: recovered.unsettled };
}

/**
 * What wakes an idle daemon: notifications of new tasks for its platform (PostgreSQL's, re-subscribed
 * after an outage; SQLite's wake file), a stop, or the poll, every second while notifications are
 * lost. Also runs the lease reaper.
 */
async function wakeUps(ctx: BuilddContext, me: BuilderIdentity, options: BuilddLoopOptions) {
  let wake: (() => void) | null = null;
  // Set by a notification that arrives while the daemon is not asleep (between an empty claim and
  // the sleep), so the wake-up is not lost.
  let poked = false;
  const poke = () => {
    poked = true;
    wake?.();
  };
  options.stop.addEventListener('abort', poke, { once: true });
  // Until the listener says it lost its connection (it may say so before it returns).
  let listening = true;
  // Listening before the first look for work, so no task registered after that look is missed.
  const unlisten = await ctx.registry.listenForTasks(
    (platforms) => (platforms === 'any' || platforms.includes(me.platformId)) && poke(),
    {
      // The idle sleep in hand is cut short, so polling every second starts now.
      onLost: (err) => (
        (listening = false),
        ctx.log.warn({ err: err.message }, 'task notifications lost; polling every second until they are back'),
        poke()
      ),
      // Notifications sent while away were missed: look at once.
      onRestored: () => ((listening = true), ctx.log.info('task notifications are back'), poke()),
    },
  );
  const stopReaper = startLeaseReaper(ctx.registry, ctx.log, reapEveryMs(ctx.settings.leaseExpiryMs), true);
  const idleMs = () => (listening ? ctx.settings.pollSeconds : Math.min(ctx.settings.pollSeconds, 1)) * 1000;
  /** Resolves true when woken, false when `ms` passed. */
  const nap = (ms: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      wake = () => (clearTimeout(timer), resolve(true));
    }).finally(() => (wake = null));
  return {
    /** Forgets earlier wake-ups: called before each look for work. */
    reset: () => void (poked = false),
    /**
     * Sleeps until woken or the poll interval has passed, unless a wake-up came since the last look.
     * A poll longer than the lease renewal is slept in pieces with a heartbeat between them (one
     * statement), so an idle builder never looks offline whatever the poll interval.
     */
    sleep: async () => {
      if (poked || options.stop.aborted) return;
      const until = Date.now() + idleMs();
      for (;;) {
        const left = until - Date.now();
        if (left <= 0 || (await nap(Math.min(left, ctx.settings.leaseRenewalMs)))) return;
        if (poked || options.stop.aborted || until - Date.now() <= 0) return;
        // A registry that is away is found and said by the next look for work.
        await touchBuilder(ctx.registry.db, me.id).catch(() => {});
      }
    },
    close: async () => {
      await stopReaper();
      await unlisten();
    },
  };
}

/** Runs one claim; anything unexpected (a full disk) hands the task back and pauses the daemon. */
async function buildClaim(ctx: BuilddContext, claim: Claim, options: BuilddLoopOptions): Promise<TaskReport> {
  try {
    return await runClaim(ctx, claim, options);
  } catch (err) {
    const reason = `the build daemon failed: ${messageOf(err)}`;
    ctx.log.error({ job: claim.jobId, err: messageOf(err) }, reason);
    const released = await releaseClaim(ctx.registry, claim, reason).then(
      () => true,
      (e: Error) => (
        ctx.log.error(
          { job: claim.jobId, err: e.message },
          'could not hand the task back; it returns to the queue when its lease expires',
        ),
        false
      ),
    );
    if (!options.once) await pause(ERROR_PAUSE_MS, options.stop);
    return { ...reportBase(claim), status: released ? 'requeued' : 'unrecorded', reason };
  }
}

/**
 * The build daemon: start (see startBuilder), then claim and build until stopped. Registry outages
 * are waited out: a failed claim is tried again within a second or two, notifications are
 * re-subscribed, and an outcome that could not be recorded is recorded when the registry is back.
 */
export async function runBuildd(ctx: BuilddContext, options: BuilddLoopOptions): Promise<TaskReport[]> {
  const host = ctx.host ?? ownInstance();
  const reports: TaskReport[] = [];
  const report = (r: TaskReport) => (reports.push(r), options.onTask?.(r));
  const started = await startBuilder(ctx, options, report);
  if (!started) return reports;
  const { me } = started;
  if (options.once) await requeueAbandoned(ctx.registry).catch(() => {});
  const wakes = options.once ? null : await wakeUps(ctx, me, options);
  ctx.log.info(`Starting build daemon '${ctx.name}' for ${me.platform}/${me.arch}`);
  let needsRecovery = started.unsettled;
  let backoff = RETRY_FIRST_MS;
  let away = false;
  let idle = false;
  const registryAway = async (err: unknown, what: string) => {
    if (!away)
      ctx.log.error(
        { err: messageOf(err) },
        `${what}: ${transientRegistryError(err) ? `the registry is unavailable (${transientRegistryError(err)})` : 'unexpected error'}; trying again`,
      );
    away = true;
    await pause(backoff, options.stop);
    backoff = Math.min(backoff * 2, RETRY_MAX_MS);
  };
  try {
    while (!options.stop.aborted) {
      wakes?.reset();
      if (needsRecovery) {
        try {
          const again = await recoverOwnTasks(ctx, me, options);
          again.reports.forEach(report);
          needsRecovery = again.unsettled;
        } catch (err) {
          await registryAway(err, 'Failed to record a kept outcome');
          continue;
        }
        if (needsRecovery) {
          await pause(RETRY_MAX_MS, options.stop);
          continue;
        }
      }
      let claim: Claim | null;
      try {
        claim = await claimNextTask(ctx.registry, me, host, ctx.settings.leaseExpiryMs);
      } catch (err) {
        // Not a whole poll interval: the registry may be back in a moment.
        await registryAway(err, 'Failed to query the registry for a new task');
        continue;
      }
      if (away) ctx.log.info('the registry answers again');
      away = false;
      backoff = RETRY_FIRST_MS;
      if (claim) {
        idle = false;
        const r = await buildClaim(ctx, claim, options);
        report(r);
        if (r.status === 'unrecorded') needsRecovery = true;
        if (options.once) break;
        continue;
      }
      if (options.once) break;
      // The empty claim recorded the builder's heartbeat.
      // Once per stretch of idleness, so the log says when the builder ran out of work.
      if (!idle) ctx.log.info(`Idle: waiting for tasks of ${me.platform}/${me.arch}`);
      idle = true;
      await wakes?.sleep();
    }
  } finally {
    await wakes?.close();
    // Not said when the registry is away: the builder then shows offline once its heartbeat is old.
    await builderStopped(ctx.registry.db, me.id).catch((err) =>
      ctx.log.warn({ err: messageOf(err) }, 'could not record that this builder stopped'),
    );
    ctx.log.info(`Stopping build daemon '${ctx.name}'`);
  }
  return reports;
}
