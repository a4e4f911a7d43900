import { hostname } from 'node:os';
import { DEFAULTS } from '../config/schema.ts';
import { sql } from 'kysely';
import { access, constants, mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { builderIdentity, claimNextTask, claimStatus, finishAttempt, heartbeat, idleHeartbeat, releaseClaim, requeueAbandoned, type BuilderIdentity, type Claim } from '../registry/attempts.ts';
import type { Registry } from '../registry/registry.ts';
import { withRegistryRetry } from '../registry/retry.ts';
import { ErrorCode, PkgForgeError, messageOf } from '../util/errors.ts';
import { assertOwnerOnlyWritable } from '../util/fs-safe.ts';
import type { Log } from '../util/log.ts';
import { attemptPath, buildTask, promoteAttempt, type TaskDirs } from './run-task.ts';
import { missingTools, type BuilddSettings } from './setup.ts';
import type { TaskOutcome } from './task-run.ts';
import { isProcessAlive } from '../util/process.ts';

/** How long a daemon waits after an unexpected failure before it claims again. */
const ERROR_PAUSE_MS = 5000;

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/** How often a building daemon looks for a cancel at the latest. */
const CANCEL_CHECK_MS = 2000;

export interface BuilddContext {
  registry: Registry;
  name: string;
  dirs: TaskDirs;
  settings: BuilddSettings;
  log: Log;
  host?: string;
}

/** What one task came to, for the caller's output. */
export interface TaskReport {
  jobId: string;
  platform: string;
  arch: string;
  attempt: number;
  status: 'success' | 'fail' | 'cancelled' | 'requeued' | 'refused';
  reason: string | null;
}

/**
 * Checks everything a builder needs before it claims anything: the builder exists, its platform is
 * active, accepted is readable, results writable, every configured tool present. A missing tool is
 * recorded on the builder (shown as "unable to build"), not just logged.
 */
export async function preflightBuilder(ctx: BuilddContext): Promise<BuilderIdentity & { platform: string; arch: string }> {
  const me = await builderIdentity(ctx.registry.db, ctx.name);
  if (!me) throw new PkgForgeError(ErrorCode.notFound, `There is no builder named '${ctx.name}' in the registry (add it with \`pkgforge builder add --name ${ctx.name} --platform P --architecture A\`)`);
  if (!me.active) throw new PkgForgeError(ErrorCode.usage, `The platform ${me.platform}/${me.arch} of builder '${ctx.name}' is not active (\`pkgforge platform activate\`)`);
  const problems: string[] = [];
  for (const [dir, what] of [[ctx.dirs.accepted, 'accepted'], [ctx.dirs.repos, 'repositories']] as const) {
    if (dir) await assertOwnerOnlyWritable(dir, what).catch((err: Error) => problems.push(err.message));
  }
  const acceptedOk = await access(ctx.dirs.accepted, constants.R_OK | constants.X_OK).then(() => true, () => false);
  if (!acceptedOk) problems.push(`the accepted directory '${ctx.dirs.accepted}' cannot be read`);
  const resultsStat = await stat(ctx.dirs.results).catch(() => null);
  if (!resultsStat?.isDirectory()) problems.push(`the results directory '${ctx.dirs.results}' does not exist`);
  else {
    const probe = join(ctx.dirs.results, `.pkgforge-probe-${process.pid}`);
    await writeFile(probe, 'test\n').then(() => unlink(probe), (err: Error) => problems.push(`the results directory '${ctx.dirs.results}' is not writable: ${err.message}`));
  }
  const missing = await missingTools(ctx.settings);
  if (missing.length > 0) problems.push(`missing tools: ${missing.join(', ')}`);
  await mkdir(ctx.dirs.tmpdir, { recursive: true, mode: DEFAULTS.tmpdirMode }).catch((err: Error) => problems.push(`cannot create '${ctx.dirs.tmpdir}': ${err.message}`));
  const sandbox = await ctx.settings.sandbox(ctx.name, me.platform);
  if (sandbox.problem) problems.push(sandbox.problem);
  else if (sandbox.sandbox?.kind === 'bwrap' && ctx.settings.builderNeedsHost) problems.push('mock needs root for its chroots and cannot run in the bubblewrap sandbox; set `sandbox: none` for this builder to rely on mock\'s own isolation (see docs/security.md)');
  const unable = problems.length > 0 ? `The build environment is incomplete: ${problems.join('; ')}` : null;
  await idleHeartbeat(ctx.registry.db, me.id, ctx.host ?? instanceName(), unable, sandbox.sandbox?.kind ?? null);
  if (unable) throw new PkgForgeError(ErrorCode.directory, `Builder '${ctx.name}': ${unable}`);
  if (sandbox.sandbox?.kind === 'none') ctx.log.warn(`Builder '${ctx.name}' builds WITHOUT a sandbox (sandbox: none): every submitter's build scripts run with this daemon's powers`);
  else ctx.log.info(`Builder '${ctx.name}': ${sandbox.sandbox!.describe()}`);
  return me;
}

/**
 * Builds one claimed task with a heartbeat renewing its lease, and records the result under the
 * claim's attempt number. `stop` aborts the build (its process group is killed) and requeues it.
 */
export async function runClaim(ctx: BuilddContext, claim: Claim, stop: AbortSignal): Promise<TaskReport> {
  const { log, settings } = ctx;
  const controller = new AbortController();
  const onStop = () => controller.abort(new Error('the build daemon was told to stop now'));
  if (stop.aborted) onStop();
  else stop.addEventListener('abort', onStop, { once: true });
  let heard: 'cancelled' | 'lost' | null = null;
  // The lease is renewed every lease_renewal; in between, the task's status is read every 2 s at
  // most, so a cancel stops the build within seconds whatever the lease settings.
  const tickMs = Math.min(settings.leaseRenewalMs, CANCEL_CHECK_MS);
  let lastRenewal = Date.now();
  let busy = false;
  const beat = setInterval(() => {
    if (busy || heard) return;
    busy = true;
    const renew = Date.now() - lastRenewal >= settings.leaseRenewalMs - tickMs / 2;
    (renew ? heartbeat(ctx.registry, claim, settings.leaseExpiryMs) : claimStatus(ctx.registry, claim))
      .then(
        (answer) => {
          if (renew && answer === 'ok') lastRenewal = Date.now();
          if (answer === 'ok' || heard) return;
          heard = answer;
          log.warn({ job: claim.jobId, attempt: claim.attempt }, answer === 'cancelled' ? 'the task was cancelled, stopping its build' : 'the lease on this task was lost, stopping its build');
          controller.abort(new Error(answer === 'cancelled' ? 'the task was cancelled' : 'the lease on this task was lost to another builder'));
        },
        (err: Error) => log.warn({ err: err.message }, 'heartbeat failed; will try again'),
      )
      .finally(() => (busy = false));
  }, tickMs);
  const base: Omit<TaskReport, 'status' | 'reason'> = { jobId: claim.jobId, platform: claim.platform, arch: claim.arch, attempt: claim.attempt };
  log.info({ job: claim.jobId, platform: claim.platform, arch: claim.arch, attempt: claim.attempt }, `Starting task ${claim.jobId} on ${ctx.name}`);
  if ((await settings.sandbox(ctx.name, claim.platform)).sandbox?.kind === 'none') log.warn({ job: claim.jobId }, `Building ${claim.jobId} WITHOUT a sandbox (sandbox: none)`);
  let result;
  try {
    result = await buildTask(claim, ctx.dirs, settings, controller.signal);
  } finally {
    clearInterval(beat);
    stop.removeEventListener('abort', onStop);
  }
  const logDir = attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt);
  const db = <T>(fn: () => Promise<T>) => withRegistryRetry(fn, { attempts: 8, onRetry: (err) => log.warn({ err: err.message }, 'registry unavailable, retrying') });
  let report: TaskReport;
  if (result.status === 'stopped') {
    if (heard === 'cancelled') report = { ...base, status: 'cancelled', reason: 'the task was cancelled' };
    else if (heard === 'lost') report = { ...base, status: 'refused', reason: result.reason };
    else {
      await db(() => releaseClaim(ctx.registry, claim, result.reason));
      report = { ...base, status: 'requeued', reason: result.reason };
    }
  } else {
    const accepted = await db(() => finishAttempt(ctx.registry, claim, result.status, result.reason, logDir));
    if (accepted) await promoteAttempt(ctx.dirs.results, claim).catch((err) => log.error({ job: claim.jobId, err: messageOf(err) }, 'could not make this attempt the current results'));
    if (!accepted) {
      log.warn({ job: claim.jobId, attempt: claim.attempt }, `Result '${result.status}' for attempt ${claim.attempt} of ${claim.jobId} refused: the attempt is no longer current (its lease expired or the task was cancelled)`);
      report = { ...base, status: 'refused', reason: 'the attempt is no longer current' };
    } else {
      report = { ...base, status: result.status, reason: result.reason };
    }
  }
  log.info({ job: claim.jobId, status: report.status, reason: report.reason }, `Finished task ${claim.jobId} on ${ctx.name}: ${report.status}`);
  if (result.run && (report.status === 'success' || report.status === 'fail' || report.status === 'cancelled')) {
    const outcome: TaskOutcome = { status: report.status, reason: report.reason };
    for (const r of settings.reports) {
      // A report that cannot be sent is logged and never changes the task.
      await r.report(result.run, outcome).catch((err) => log.error({ job: claim.jobId, report: r.name, err: messageOf(err) }, `Failed to send the ${r.name} report`));
    }
  }
  return report;
}

/**
 * The task another running instance of this builder holds under a live lease, if any. A daemon
 * resets its own unfinished attempt at start, but must not take a healthy build from a second
 * process started under the same name.
 */
async function busyElsewhere(registry: Registry, builderId: number): Promise<{ job: string; host: string | null; attempt: number } | null> {
  const row = await registry.db
    .selectFrom('tasks')
    .innerJoin('jobs', 'jobs.id', 'tasks.job_id')
    .innerJoin('attempts', (j) => j.onRef('attempts.task_id', '=', 'tasks.id').onRef('attempts.number', '=', 'tasks.attempt'))
    .select(['jobs.uuid', 'attempts.host', 'tasks.attempt'])
    .where('tasks.builder_id', '=', builderId)
    .where('tasks.status', '=', 'building')
    .where('tasks.lease_expires_at', '>', sql<number>`${sql.raw(registry.caps.nowMsSql)}`)
    .executeTakeFirst();
  if (!row) return null;
  // The lease of a daemon on this host that is no longer running is not a live one.
  const holder = row.host?.match(/^(.*)\[(\d+)\]$/);
  if (holder && holder[1] === hostname() && !isProcessAlive(Number(holder[2]))) return null;
  return { job: row.uuid, host: row.host, attempt: row.attempt };
}


/** How a daemon names itself in the registry: its host and process, e.g. `buildhost[4242]`. */
export const instanceName = () => `${hostname()}[${process.pid}]`;

export interface BuilddLoopOptions {
  /** Build at most one task and return (`pkgforge buildd` without --daemon). */
  once?: boolean;
  /** Finish the build in hand, then return. */
  stop: AbortSignal;
  /** Abort the build in hand now (a second signal, or the stop grace running out). */
  abort: AbortSignal;
  onTask?: (report: TaskReport) => void;
}

/** The build daemon: preflight, reset its own unfinished attempt, then claim and build until stopped. */
export async function runBuildd(ctx: BuilddContext, options: BuilddLoopOptions): Promise<TaskReport[]> {
  const host = ctx.host ?? instanceName();
  const me = await preflightBuilder(ctx);
  const busy = await busyElsewhere(ctx.registry, me.id);
  if (busy) {
    throw new PkgForgeError(ErrorCode.locked, `Builder '${ctx.name}' is already building job ${busy.job} on ${busy.host ?? 'another host'} (attempt ${busy.attempt}); run one daemon per builder name`);
  }
  const reset = await requeueAbandoned(ctx.registry, { builderId: me.id });
  if (reset.length > 0) ctx.log.warn({ tasks: reset }, 'requeued tasks this builder left unfinished');
  ctx.log.info(`Starting build daemon '${ctx.name}' for ${me.platform}/${me.arch}`);
  const reports: TaskReport[] = [];
  let wake: (() => void) | null = null;
  // Set by a notification that arrives while the daemon is not asleep (between an empty claim and
  // the sleep), so the wake-up is not lost.
  let poked = false;
  const poke = () => {
    poked = true;
    wake?.();
  };
  options.stop.addEventListener('abort', poke, { once: true });
  let unlisten: (() => Promise<void>) | null = null;
  if (!options.once) {
    unlisten = await ctx.registry
      .listenForTasks((platforms) => platforms.includes(me.platformId) && poke(), (err) => ctx.log.warn({ err: err.message }, 'task notifications lost; polling'))
      .catch((err: Error) => (ctx.log.warn({ err: err.message }, 'cannot listen for task notifications; polling'), null));
  }
  // Without notifications from other processes (SQLite) an idle daemon polls often; with them
  // (PostgreSQL), the poll is only a fallback.
  const idleMs = (unlisten && ctx.registry.caps.supportsListenNotify ? ctx.settings.pollSeconds : Math.min(ctx.settings.pollSeconds, 1)) * 1000;
  try {
    while (!options.stop.aborted) {
      let claim: Claim | null = null;
      poked = false;
      try {
        await requeueAbandoned(ctx.registry);
        claim = await claimNextTask(ctx.registry, me, host, ctx.settings.leaseExpiryMs);
      } catch (err) {
        ctx.log.error({ err: messageOf(err) }, 'Failed to query the registry for a new task');
      }
      if (claim) {
        let report: TaskReport;
        try {
          report = await runClaim(ctx, claim, options.abort);
        } catch (err) {
          // Anything unexpected (a full disk, the registry gone for longer than the retries): the
          // task goes back to the queue, and the daemon carries on after a pause.
          const reason = `the build daemon failed: ${messageOf(err)}`;
          ctx.log.error({ job: claim.jobId, err: messageOf(err) }, reason);
          await releaseClaim(ctx.registry, claim, reason).catch(() => {});
          report = { jobId: claim.jobId, platform: claim.platform, arch: claim.arch, attempt: claim.attempt, status: 'requeued', reason };
          if (!options.once) await pause(ERROR_PAUSE_MS, options.stop);
        }
        reports.push(report);
        options.onTask?.(report);
        if (options.once) break;
        continue;
      }
      if (options.once) break;
      await idleHeartbeat(ctx.registry.db, me.id, host).catch(() => {});
      if (poked || options.stop.aborted) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, idleMs);
        wake = () => (clearTimeout(timer), resolve());
      });
      wake = null;
    }
  } finally {
    await unlisten?.();
    ctx.log.info(`Stopping build daemon '${ctx.name}'`);
  }
  return reports;
}

