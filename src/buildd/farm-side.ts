/**
 * The farm's side of a remote build (`pkgforge buildd --server`): what the HTTP API hands over once a
 * remote builder reported (web/routes/builder-api.ts). The builder built in its own sandbox and
 * uploaded its products; here they are checked, signed, published and recorded with the farm's own
 * checks, key and repositories, through the same steps as a local daemon's build (completion.ts), so
 * a remote builder never holds a signing key or write access to a repository.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RECEIVED_DIR, type RemoteFinishAnswer, type RemoteReport } from '../core/remote-build.ts';
import { attemptPath, taskResultsPath } from '../core/results-layout.ts';
import type { BuildLimits } from '../core/limits.ts';
import type { Claim } from '../registry/attempts.ts';
import type { Registry } from '../registry/registry.ts';
import type { Log } from '../util/log.ts';
import {
  buildTask,
  closeAttempt,
  keepOutcome,
  newBuildInfo,
  readPendingOutcome,
  reopenAttempt,
  resumeAttempt,
  type EndedAttempt,
  type PendingOutcome,
  type TaskDirs,
} from './attempt.ts';
import { ReceivedProducts } from './commands/received.ts';
import { completeAttempt, publishAdopted, type BuilddContext, type TaskReport } from './completion.ts';
import { keepLease, type Lease } from './lease.ts';
import type { BuilddSettings } from './setup.ts';

export interface FarmSide {
  leaseExpiryMs: number;
  leaseRenewalMs: number;
  productMaxBytes: (platform: string) => number;
  uploadMaxBytes: (platform: string) => number;
  settle(claim: Claim): Promise<boolean>;
  complete(claim: Claim, report: RemoteReport): Promise<RemoteFinishAnswer | 'unrecorded'>;
  /** Stops what is in hand at once (the server stops): its outcomes stay kept, for the builder's next report. */
  close(): void;
}

/** What a recorded end of a task says to the builder that reported it. */
function answerOf(report: TaskReport): RemoteFinishAnswer | 'unrecorded' {
  if (report.status === 'unrecorded') return 'unrecorded';
  if (report.status === 'success' || report.status === 'fail' || report.status === 'cancelled')
    return { status: report.status, reason: report.reason };
  return { status: 'refused', reason: report.reason };
}

/** Removes the uploads every attempt of the claim's task received (their outcomes are recorded or refused). */
async function forgetReceived(results: string, claim: Claim): Promise<void> {
  const taskDir = join(results, taskResultsPath(claim.jobId, claim.platform, claim.arch));
  for (const name of await readdir(taskDir).catch(() => [] as string[]))
    if (name.startsWith('attempt-')) await rm(join(taskDir, name, RECEIVED_DIR), { recursive: true, force: true });
}

export function farmSide(base: {
  registry: Registry;
  dirs: TaskDirs;
  settings: BuilddSettings;
  log: Log;
  /** What one build of the platform may use: its product limit for each upload, its workdir for all together. */
  limits: (platform: string) => Readonly<BuildLimits>;
}): FarmSide {
  const abort = new AbortController();
  // The server's stop aborts publishing in hand; there is no "finish the build in hand" to wait for.
  const signals = { stop: abort.signal, abort: abort.signal };
  const contextOf = (claim: Claim): BuilddContext => ({ ...base, name: claim.builderName });

  /** Runs `fn` with the claim's lease renewed by the farm itself while it checks, signs and publishes. */
  async function leased<T>(claim: Claim, fn: (ctx: BuilddContext, lease: Lease) => Promise<T>) {
    const ctx = contextOf(claim);
    const lease = keepLease(ctx, claim, abort.signal);
    try {
      return await fn(ctx, lease);
    } finally {
      lease.stop();
    }
  }

  /** The ended attempt the builder's report describes, kept before anything is published. */
  async function reported(
    ctx: BuilddContext,
    claim: Claim,
    report: RemoteReport,
    signal: AbortSignal,
  ): Promise<{ attempt: EndedAttempt; pending: Omit<PendingOutcome, 'attempt' | 'info'> } | 'stopped'> {
    // (Only a success is kept: see below.)
    const kept = report.status === 'success' ? await readPendingOutcome(ctx.dirs.results, claim) : null;
    // Reported again (the server restarted, or its answer was lost): the outcome kept the first time.
    if (kept) return { attempt: await resumeAttempt(claim, ctx.dirs, ctx.settings, kept, signal), pending: kept };
    const attemptDir = join(ctx.dirs.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));
    let ended: { status: 'success' | 'fail' | 'stopped'; reason: string | null; attempt: EndedAttempt };
    if (report.status === 'fail') {
      // A build that failed before any of its log was sent has no directory on the farm yet.
      await mkdir(attemptDir, { recursive: true });
      const reason = report.reason ?? 'the build failed';
      const info = {
        ...newBuildInfo(claim),
        hostname: report.hostname,
        starttime: report.starttime,
        phases: report.phases,
        success: report.success,
        failures: report.failures,
        reason,
      };
      const attempt = await reopenAttempt(
        claim,
        ctx.dirs,
        ctx.settings,
        attemptDir,
        info,
        signal,
        `the build on ${report.hostname} failed: ${reason}`,
      );
      ended = { status: 'fail', reason, attempt };
    } else {
      ended = await buildTask(claim, ctx.dirs, ctx.settings, signal, {
        builder: new ReceivedProducts(report, join(attemptDir, RECEIVED_DIR)),
        start: { hostname: report.hostname, starttime: report.starttime },
        intro: [
          `built by ${claim.builderName} on ${report.hostname} (attempt ${claim.attempt}); checking, signing and publishing on the farm`,
        ],
      });
    }
    if (ended.status === 'stopped') {
      await closeAttempt(ended.attempt).catch(() => {});
      return 'stopped';
    }
    const pending = { status: ended.status, reason: ended.reason, published: false };
    // Kept only where there is something to publish: the journal is there so that a restart does not
    // publish twice. A failure is kept by its builder, which reports it again until it is recorded.
    if (pending.status === 'success') await keepOutcome(ended.attempt, pending);
    return { attempt: ended.attempt, pending };
  }

  return {
    leaseExpiryMs: base.settings.leaseExpiryMs,
    leaseRenewalMs: base.settings.leaseRenewalMs,
    productMaxBytes: (platform) => base.limits(platform).product,
    uploadMaxBytes: (platform) => base.limits(platform).workdir,
    settle: (claim) => leased(claim, async (ctx, lease) => (await publishAdopted(ctx, claim, lease, signals)) !== null),
    complete: (claim, report) =>
      leased(claim, async (ctx, lease) => {
        const ended = await reported(ctx, claim, report, lease.signal);
        if (ended === 'stopped') {
          const heard = lease.heard();
          if (heard === 'cancelled') return { status: 'cancelled', reason: 'the task was cancelled' };
          if (heard === 'lost') return { status: 'refused', reason: 'the attempt is no longer current' };
          return 'unrecorded';
        }
        const answer = answerOf(await completeAttempt(ctx, claim, ended.attempt, ended.pending, lease, signals));
        // Recorded: what was received is in the attempt's directory now, or refused; so is what
        // earlier attempts of the task received before their leases ran out.
        if (answer !== 'unrecorded') await forgetReceived(ctx.dirs.results, claim);
        return answer;
      }),
    close: () => abort.abort(new Error('the server is stopping')),
  };
}
