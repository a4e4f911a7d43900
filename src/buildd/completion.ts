/**
 * The end of an attempt, shared by the build daemon and the farm's side of a remote build: accept the
 * build in the registry, publish it, record the result, make it the task's results and send the
 * reports (the design's "durable before anyone is told").
 */
import { attemptPath } from '../core/results-layout.ts';
import { acceptAttempt, finishAttempt, type Claim } from '../registry/attempts.ts';
import type { Registry } from '../registry/registry.ts';
import { transientRegistryError, withRegistryRetry, type RetryOptions } from '../registry/retry.ts';
import { messageOf } from '../util/errors.ts';
import type { Log } from '../util/log.ts';
import type { Lease } from './lease.ts';
import {
  adoptAttempt,
  closeAttempt,
  forgetOutcome,
  keepOutcome,
  promoteAttempt,
  publishAttempt,
  type EndedAttempt,
  type PendingOutcome,
  type TaskDirs,
} from './attempt.ts';
import type { BuilddSettings } from './setup.ts';
import type { TaskOutcome } from './phases.ts';

/** Back-off between registry retries: short, so a daemon is at work within a second or two of the registry's return. */
export const RETRY_FIRST_MS = 200;
export const RETRY_MAX_MS = 1000;

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
  /**
   * `unrecorded`: the registry could not be told while the lease could still be valid; the outcome is
   * kept and recorded when it is back (if the attempt still holds the task).
   */
  status: 'success' | 'fail' | 'cancelled' | 'requeued' | 'refused' | 'unrecorded';
  reason: string | null;
}

/** How the daemon was told to stop: `stop` finishes the build in hand, `abort` ends it now. */
export interface StopSignals {
  stop: AbortSignal;
  abort: AbortSignal;
}

/**
 * Accepts (a success), publishes and records an ended attempt whose outcome is kept on disk, then
 * makes it the task's results and sends the reports. Used right after a build, by a claim that
 * publishes an earlier attempt's accepted build, and by `recoverOwnTasks` for a kept outcome.
 *
 * The registry accepts the build first (`acceptAttempt`, fenced by the attempt number): from then
 * on the task is published from this build only, by this daemon or, if it stops, by whoever claims
 * the task next. A kept outcome is removed only once its own result is recorded: a later claim may
 * need it.
 */
export async function completeAttempt(
  ctx: BuilddContext,
  claim: Claim,
  attempt: EndedAttempt,
  pending: Omit<PendingOutcome, 'attempt' | 'info'>,
  lease: Lease,
  signals: StopSignals,
): Promise<TaskReport> {
  const retry = retryUntilLease(ctx, lease, signals);
  let { status, reason } = pending;
  try {
    if (status === 'success' && !pending.published) {
      const published = await publishAccepted(ctx, claim, attempt, lease, retry);
      if ('jobId' in published) return published;
      ({ status, reason } = published);
    }
    return await recordOutcome(ctx, claim, attempt, { status, reason }, lease, retry);
  } catch (err) {
    if (!transientRegistryError(err)) throw err;
    await closeAttempt(attempt).catch(() => {});
    ctx.log.error(
      { job: claim.jobId, attempt: claim.attempt, err: messageOf(err) },
      `Could not record the result '${status}' of ${claim.jobId} (attempt ${claim.attempt}): the registry was unavailable${signals.abort.aborted ? ' when the daemon was told to stop now' : ' while the lease could be valid'}; the outcome is kept in ${attempt.attemptDir} and recorded when the registry is back, if the attempt still holds the task`,
    );
    return finished(ctx, { ...reportBase(claim), status: 'unrecorded', reason });
  }
}

type Outcome = { status: 'success' | 'fail'; reason: string | null };

/**
 * A successful build, accepted by the registry for its attempt and then published; returns how
 * publishing ended (kept in the outcome journal), or the report when the attempt no longer holds
 * its task or the daemon was told to stop now (the outcome stays kept for the next claim).
 */
async function publishAccepted(
  ctx: BuilddContext,
  claim: Claim,
  attempt: EndedAttempt,
  lease: Lease,
  retry: RetryOptions,
): Promise<Outcome | TaskReport> {
  const answer = await withRegistryRetry(() => acceptAttempt(ctx.registry, claim, ctx.settings.leaseExpiryMs), retry);
  if (answer !== 'ok') return notCurrent(ctx, claim, attempt, answer);
  lease.renewed();
  const published = await publishAttempt(attempt, ctx.settings.publishers);
  if (published.status === 'stopped') {
    const heard = lease.heard();
    if (heard) return notCurrent(ctx, claim, attempt, heard);
    await closeAttempt(attempt);
    return finished(ctx, { ...reportBase(claim), status: 'unrecorded', reason: published.reason });
  }
  const outcome = published as Outcome;
  await keepOutcome(attempt, { ...outcome, published: true });
  return outcome;
}

/** The attempt was cancelled, or lost its task to another, before it was published. */
async function notCurrent(
  ctx: BuilddContext,
  claim: Claim,
  attempt: EndedAttempt,
  answer: 'cancelled' | 'lost',
): Promise<TaskReport> {
  await closeAttempt(attempt);
  const base = reportBase(claim);
  if (answer === 'cancelled')
    return reportTo(ctx, attempt, { ...base, status: 'cancelled', reason: 'the task was cancelled' });
  ctx.log.warn(
    { job: claim.jobId, attempt: claim.attempt },
    `Attempt ${claim.attempt} of ${claim.jobId} no longer holds its task (its lease expired or it was given to another builder): not published`,
  );
  return finished(ctx, { ...base, status: 'refused', reason: 'the attempt is no longer current' });
}

/**
 * The outcome recorded for the attempt (fenced by its number), then the kept journal forgotten,
 * the attempt made the task's current results, and the reports sent.
 */
async function recordOutcome(
  ctx: BuilddContext,
  claim: Claim,
  attempt: EndedAttempt,
  { status, reason }: Outcome,
  lease: Lease,
  retry: RetryOptions,
): Promise<TaskReport> {
  await closeAttempt(attempt);
  const dir = attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt);
  const accepted = await withRegistryRetry(() => finishAttempt(ctx.registry, claim, status, reason, dir), retry);
  // Recorded (or refused): nothing more to renew, and a status read now would say `lost`.
  lease.stop();
  if (!accepted) {
    ctx.log.warn(
      { job: claim.jobId, attempt: claim.attempt },
      `Result '${status}' for attempt ${claim.attempt} of ${claim.jobId} refused: the attempt is no longer current (its lease expired or the task was cancelled)`,
    );
    return finished(ctx, { ...reportBase(claim), status: 'refused', reason: 'the attempt is no longer current' });
  }
  await forgetOutcome(attempt.attemptDir);
  await promoteAttempt(ctx.dirs.results, claim).catch((err) =>
    ctx.log.error({ job: claim.jobId, err: messageOf(err) }, 'could not make this attempt the current results'),
  );
  return reportTo(ctx, attempt, { ...reportBase(claim), status, reason });
}

export const reportBase = (claim: Claim): Omit<TaskReport, 'status' | 'reason'> => ({
  jobId: claim.jobId,
  platform: claim.platform,
  arch: claim.arch,
  attempt: claim.attempt,
});

export function finished(ctx: Pick<BuilddContext, 'log' | 'name'>, report: TaskReport): TaskReport {
  ctx.log.info(
    { job: report.jobId, status: report.status, reason: report.reason },
    `Finished task ${report.jobId} on ${ctx.name}: ${report.status}`,
  );
  return report;
}

/** Logs the end and sends the reports of a recorded outcome; a report that cannot be sent never changes the task. */
async function reportTo(ctx: BuilddContext, attempt: EndedAttempt, report: TaskReport): Promise<TaskReport> {
  finished(ctx, report);
  if (attempt.run && (report.status === 'success' || report.status === 'fail' || report.status === 'cancelled')) {
    const outcome: TaskOutcome = { status: report.status, reason: report.reason };
    for (const r of ctx.settings.reports) {
      await r
        .report(attempt.run, outcome)
        .catch((err) =>
          ctx.log.error(
            { job: report.jobId, report: r.name, err: messageOf(err) },
            `Failed to send the ${r.name} report`,
          ),
        );
    }
  }
  return report;
}

/**
 * Retries of a finished build's registry calls: until the lease may have run out, or the daemon is
 * told to stop now (a first SIGTERM finishes the build in hand, recording included).
 */
export function retryUntilLease(ctx: BuilddContext, lease: Lease, signals: StopSignals) {
  let said = false;
  return {
    attempts: Infinity,
    until: () => lease.validUntil(),
    delayMs: RETRY_FIRST_MS,
    maxDelayMs: RETRY_MAX_MS,
    signal: signals.abort,
    onRetry: (err: Error, _n: number, _ms: number, kind: string) => {
      if (said) return;
      said = true;
      ctx.log.warn(
        { err: err.message },
        `registry unavailable (${kind}); retrying until ${new Date(lease.validUntil()).toISOString()}, while the lease may still be valid`,
      );
    },
  };
}

/**
 * A claim of a task whose earlier attempt's build the registry accepted (its builder stopped before
 * recording it): that build's kept products are published and recorded, not built again. Null when
 * the accepted attempt left no readable outcome (the claim then builds).
 */
export async function publishAdopted(
  ctx: BuilddContext,
  claim: Claim,
  lease: Lease,
  signals: StopSignals,
): Promise<TaskReport | null> {
  if (claim.acceptedAttempt === null || claim.acceptedAttempt === claim.attempt) return null;
  const adopted = await adoptAttempt(claim, ctx.dirs, ctx.settings, claim.acceptedAttempt, lease.signal);
  if (!adopted) {
    ctx.log.warn(
      { job: claim.jobId, attempt: claim.attempt },
      `The build of attempt ${claim.acceptedAttempt} of ${claim.jobId}, accepted for publishing, left no readable outcome; building again`,
    );
    return null;
  }
  const pending = {
    status: adopted.pending.status,
    reason: adopted.pending.reason,
    published: adopted.pending.published,
  };
  await keepOutcome(adopted.attempt, pending);
  return completeAttempt(ctx, claim, adopted.attempt, pending, lease, signals);
}
