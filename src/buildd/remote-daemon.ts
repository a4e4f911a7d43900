/**
 * The remote build daemon (`pkgforge buildd --server URL --name N`): a build host that holds only the
 * farm's address and a builder token. It claims over HTTP (long-polling), fetches the claimed job's
 * accepted sources into its own directory and checks them against the sizes and checksums the
 * farm accepted them with, builds in its own sandbox, streams its log up as it is written, uploads its products
 * and reports. The farm checks, signs, publishes and records (farm-side.ts).
 *
 * Nothing is lost to a broken connection: the outcome is kept on disk the moment the build ends
 * (as a local daemon keeps it), and the log, uploads and report are retried with back-off for as
 * long as the lease may be valid; a daemon restarted after a kill delivers what it kept.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MANIFEST_FILE } from '../core/manifest.ts';
import type { RemoteFile, RemoteReport } from '../core/remote-build.ts';
import { attemptPath } from '../core/results-layout.ts';
import type { Claim } from '../registry/attempts.ts';
import { ErrorCode, PkgForgeError, isPkgForgeError, messageOf } from '../util/errors.ts';
import { childPath, writeFileAtomic } from '../util/fs-safe.ts';
import { hashFile } from '../util/hash.ts';
import type { Log } from '../util/log.ts';
import {
  buildTask,
  closeAttempt,
  forgetOutcome,
  keepOutcome,
  newBuildInfo,
  readPendingOutcome,
  type PendingOutcome,
  type TaskDirs,
} from './attempt.ts';
import { finished, reportBase, type StopSignals, type TaskReport } from './completion.ts';
import { ownInstance, type BuilddLoopOptions } from './daemon.ts';
import {
  transientFarmError,
  withFarmRetry,
  type FarmBuilder,
  type FarmClient,
  type HeldClaim,
  type RemoteClaim,
} from './farm-client.ts';
import { hostProblems, leftByThisHost } from './host-check.ts';
import { keepLease, type Lease } from './lease.ts';
import { endLeftovers } from './leftovers.ts';
import type { BuildInfo } from './phases.ts';
import type { BuilddSettings } from './setup.ts';

export interface RemoteBuilddContext {
  farm: FarmClient;
  name: string;
  /** The builder's own directories: fetched sources (accepted), its attempts (results), tmpdir. */
  dirs: TaskDirs;
  /** Its builder command and sandbox; checks, signers, publishers and reports are the farm's. */
  settings: BuilddSettings;
  log: Log;
  host?: string;
}

/** How long an idle builder's claim waits on the farm for a task before asking again. */
const CLAIM_WAIT_SECONDS = 30;

/** How long the daemon waits after an unexpected failure before it claims again. */
const ERROR_PAUSE_MS = 5000;

/** How often the live log is sent up while a build runs. */
const LOG_EVERY_MS = 1000;

/** The largest piece of log one request carries (the farm takes at most 1 MiB). */
const LOG_PIECE = 512 * 1024;

const pause = (ms: number, signal: AbortSignal) => sleep(ms, undefined, { signal }).catch(() => {});

const localAttemptDir = (ctx: RemoteBuilddContext, claim: Claim) =>
  join(ctx.dirs.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));

/**
 * Retries of a farm call in a build's hands: for as long as the lease may be valid (from this host's
 * last renewal), not once the farm said the attempt is over, nor once the daemon must stop now.
 */
function retryUntilLease(ctx: RemoteBuilddContext, lease: Lease, signals: StopSignals) {
  let said = false;
  return {
    until: () => (lease.heard() ? 0 : lease.validUntil()),
    signal: signals.abort,
    onRetry: (err: Error) => {
      if (said) return;
      said = true;
      ctx.log.warn(
        { err: err.message },
        `the farm is unavailable; retrying until ${new Date(lease.validUntil()).toISOString()}, while the lease may still be valid`,
      );
    },
  };
}

/**
 * Sends the attempt's log up from `offset`, in pieces, up to its current end; returns the new offset.
 * What the farm already has is skipped by the farm, so a piece sent twice does no harm.
 */
async function sendLog(ctx: RemoteBuilddContext, claim: Claim, offset: number): Promise<number> {
  const fh = await open(join(localAttemptDir(ctx, claim), 'build.log'), 'r').catch(() => null);
  if (!fh) return offset;
  try {
    const piece = Buffer.allocUnsafe(LOG_PIECE);
    for (;;) {
      const { bytesRead } = await fh.read(piece, 0, LOG_PIECE, offset);
      if (bytesRead === 0) return offset;
      try {
        await ctx.farm.appendLog(claim, offset, piece.subarray(0, bytesRead));
      } catch (err) {
        // The farm has less than we sent (it lost what it had not yet written): from the start again.
        if (offset > 0 && isPkgForgeError(err, ErrorCode.usage)) {
          offset = 0;
          continue;
        }
        throw err;
      }
      offset += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

/** Sends the live log every second while a build runs; a farm away meanwhile is caught up later. */
function liveLog(ctx: RemoteBuilddContext, claim: Claim) {
  let offset = 0;
  let busy: Promise<void> | null = null;
  let failing = false;
  const tick = () => {
    busy ??= sendLog(ctx, claim, offset)
      .then(
        (at) => void ((offset = at), (failing = false)),
        (err: Error) => {
          if (!failing)
            ctx.log.warn({ job: claim.jobId, err: err.message }, 'could not send the live log; will keep trying');
          failing = true;
        },
      )
      .finally(() => (busy = null));
  };
  const timer = setInterval(tick, LOG_EVERY_MS);
  return {
    /** Stops sending; resolves with where the farm's copy ends, for the rest to be sent. */
    stop: async () => {
      clearInterval(timer);
      await busy;
      return offset;
    },
  };
}

/**
 * The claimed job's sources, downloaded into `accepted/.fetch-*` and checked against the sizes and
 * checksums of the farm's accepted copy (its build.yml), then renamed to `accepted/<job>` with the farm's build.yml.
 */
async function fetchSources(
  ctx: RemoteBuilddContext,
  rc: RemoteClaim,
  retry: ReturnType<typeof retryUntilLease>,
): Promise<void> {
  const { claim } = rc;
  const dir = childPath(ctx.dirs.accepted, claim.jobId);
  const fetching = join(ctx.dirs.accepted, `.fetch-${claim.jobId}-${randomBytes(4).toString('hex')}`);
  await mkdir(fetching, { mode: 0o755 });
  try {
    for (const source of rc.sources) {
      const path = childPath(fetching, source.file);
      await withFarmRetry(async () => {
        await rm(path, { force: true });
        await ctx.farm.download(claim, source, path);
      }, retry);
    }
    await writeFileAtomic(join(fetching, MANIFEST_FILE), rc.manifest);
    await rm(dir, { recursive: true, force: true });
    await rename(fetching, dir);
  } finally {
    await rm(fetching, { recursive: true, force: true });
  }
}

/** The report of an ended attempt: what the farm needs to record it and take its products. */
async function reportOf(info: BuildInfo, pending: Pick<PendingOutcome, 'status' | 'reason'>): Promise<RemoteReport> {
  const products: RemoteFile[] = [];
  for (const path of info.products) {
    const { size, sha256 } = await hashFile(path, ['sha256']);
    products.push({ name: basename(path), size, sha256: sha256! });
  }
  return {
    status: pending.status,
    // The farm takes reasons of up to 4096 characters: a longer one is cut, not refused.
    reason: pending.reason && pending.reason.length > 4000 ? `${pending.reason.slice(0, 4000)}…` : pending.reason,
    hostname: info.hostname,
    starttime: info.starttime,
    phases: info.phases,
    success: info.success,
    failures: info.failures,
    products,
  };
}

/**
 * Delivers a kept outcome: the rest of the log, the products, then the report, each retried while
 * the lease may be valid. The farm answers how the task ended; the local copies then go.
 */
async function deliver(
  ctx: RemoteBuilddContext,
  claim: Claim,
  pending: PendingOutcome,
  lease: Lease,
  signals: StopSignals,
  logOffset = 0,
): Promise<TaskReport> {
  const retry = retryUntilLease(ctx, lease, signals);
  const base = reportBase(claim);
  let report: RemoteReport | null = null;
  try {
    await withFarmRetry(() => sendLog(ctx, claim, logOffset), retry);
    report = await reportOf(pending.info, pending);
    // The farm holds the accepted copies: a source package rebuilt under its own name is recorded as
    // the job's accepted copy (keepProducts), and not sent.
    const accepted = childPath(ctx.dirs.accepted, claim.jobId);
    for (const [i, path] of pending.info.products.entries()) {
      const file = report.products[i]!;
      if (dirname(path) !== accepted) await withFarmRetry(() => ctx.farm.upload(claim, path, file), retry);
    }
    // Once recorded, the farm says the lease is lost; a report whose answer was lost is answered
    // again (with the recorded outcome), so it is retried for the lease's whole time.
    const answer = await withFarmRetry(() => ctx.farm.finish(claim, report!), {
      ...retry,
      until: () => lease.validUntil(),
    });
    lease.stop();
    await forget(ctx, claim);
    return finished(ctx, { ...base, status: answer.status, reason: answer.reason });
  } catch (err) {
    if (isPkgForgeError(err, ErrorCode.staleAttempt)) {
      await forget(ctx, claim);
      return finished(ctx, {
        ...base,
        status: lease.heard() === 'cancelled' ? 'cancelled' : 'refused',
        reason: messageOf(err),
      });
    }
    if (!transientFarmError(err)) return refused(ctx, claim, report, err, lease, signals);
    // Kept: a daemon started again delivers it, if the attempt still holds its task.
    ctx.log.error(
      { job: claim.jobId, attempt: claim.attempt, err: messageOf(err) },
      `Could not deliver the outcome '${pending.status}' of ${claim.jobId} (attempt ${claim.attempt}): ${messageOf(err)}; it is kept in ${localAttemptDir(ctx, claim)}`,
    );
    return finished(ctx, { ...base, status: 'unrecorded', reason: pending.reason });
  }
}

/**
 * The farm refused part of a delivery (a product over its size limit, a log too long, a name it does
 * not take): the task fails with the farm's words, instead of being retried for ever or left to
 * expire. Handed back when even that report cannot be made.
 */
async function refused(
  ctx: RemoteBuilddContext,
  claim: Claim,
  report: RemoteReport | null,
  err: unknown,
  lease: Lease,
  signals: StopSignals,
): Promise<TaskReport> {
  const reason = `The delivery of this build was refused: ${messageOf(err)}`;
  ctx.log.error({ job: claim.jobId, attempt: claim.attempt }, reason);
  const failed: RemoteReport = {
    ...(report ?? {
      hostname: hostname(),
      starttime: Math.floor(Date.now() / 1000),
      phases: [],
      success: [],
      failures: [],
    }),
    status: 'fail',
    reason,
    products: [],
  };
  try {
    const answer = await withFarmRetry(() => ctx.farm.finish(claim, failed), retryUntilLease(ctx, lease, signals));
    await forget(ctx, claim);
    return finished(ctx, { ...reportBase(claim), status: answer.status, reason: answer.reason });
  } catch {
    return handBack(ctx, claim, lease, signals, reason);
  }
}

/** The builder's local copies of a job it reported: the farm has them now. */
async function forget(ctx: RemoteBuilddContext, claim: Claim): Promise<void> {
  await forgetOutcome(localAttemptDir(ctx, claim)).catch(() => {});
  await rm(childPath(ctx.dirs.results, claim.jobId), { recursive: true, force: true }).catch(() => {});
  await rm(childPath(ctx.dirs.accepted, claim.jobId), { recursive: true, force: true }).catch(() => {});
}

/** A build that could not run or was stopped: the task goes back to the farm's queue (unless it was cancelled or taken). */
async function handBack(
  ctx: RemoteBuilddContext,
  claim: Claim,
  lease: Lease,
  signals: StopSignals,
  reason: string,
): Promise<TaskReport> {
  const base = reportBase(claim);
  const heard = lease.heard();
  await forget(ctx, claim);
  if (heard === 'cancelled') return finished(ctx, { ...base, status: 'cancelled', reason: 'the task was cancelled' });
  if (heard === 'lost') return finished(ctx, { ...base, status: 'refused', reason });
  try {
    const released = await withFarmRetry(() => ctx.farm.release(claim, reason), retryUntilLease(ctx, lease, signals));
    return finished(ctx, { ...base, status: released ? 'requeued' : 'refused', reason });
  } catch (err) {
    if (!transientFarmError(err) && !isPkgForgeError(err, ErrorCode.staleAttempt)) throw err;
    ctx.log.error(
      { job: claim.jobId, err: messageOf(err) },
      `Could not hand task ${claim.jobId} back: ${messageOf(err)}; it returns to the queue when its lease expires`,
    );
    return finished(ctx, { ...base, status: 'unrecorded', reason });
  }
}

/** Builds one task claimed over HTTP, from fetching its sources to the farm's answer. */
export async function runRemoteClaim(
  ctx: RemoteBuilddContext,
  rc: RemoteClaim,
  signals: StopSignals,
): Promise<TaskReport> {
  const { claim } = rc;
  const lease = keepLease(ctx, claim, signals.abort, (renew) => ctx.farm.heartbeat(claim, renew));
  try {
    ctx.log.info(
      { job: claim.jobId, platform: claim.platform, arch: claim.arch, attempt: claim.attempt },
      `Starting task ${claim.jobId} on ${ctx.name}`,
    );
    const retry = retryUntilLease(ctx, lease, signals);
    try {
      await fetchSources(ctx, rc, retry);
    } catch (err) {
      if (!isPkgForgeError(err, ErrorCode.checksum)) return await handBack(ctx, claim, lease, signals, messageOf(err));
      // The farm's own copy does not match its registry, or the download was altered on the way:
      // the task fails with the reason, as an unreadable accepted copy fails a local build.
      const info = { ...newBuildInfo(claim), hostname: hostname(), reason: messageOf(err) };
      const dir = localAttemptDir(ctx, claim);
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(join(dir, 'build.log'), `pkgforge: ${messageOf(err)}\n`);
      const outcome = { status: 'fail' as const, reason: messageOf(err), published: false };
      // Kept as a build's outcome is, so a daemon started again delivers it.
      await keepOutcome({ attemptDir: dir, info, log: null!, run: null }, outcome);
      return await deliver(ctx, claim, { ...outcome, attempt: claim.attempt, info }, lease, signals);
    }
    const live = liveLog(ctx, claim);
    let sent: number;
    let built: Awaited<ReturnType<typeof buildTask>>;
    try {
      built = await buildTask(claim, ctx.dirs, ctx.settings, lease.signal);
      await closeAttempt(built.attempt);
    } finally {
      sent = await live.stop();
    }
    if (built.status === 'stopped') {
      // Its log's end (why it stopped) is worth one try, while the attempt is still current (a stop,
      // not a cancel: the farm takes nothing more from a cancelled attempt); the task goes back either way.
      await sendLog(ctx, claim, sent).catch(() => {});
      return await handBack(ctx, claim, lease, signals, built.reason ?? 'stopped');
    }
    const outcome = { status: built.status, reason: built.reason, published: false };
    await keepOutcome(built.attempt, outcome);
    return await deliver(
      ctx,
      claim,
      { ...outcome, attempt: claim.attempt, info: built.attempt.info },
      lease,
      signals,
      sent,
    );
  } finally {
    lease.stop();
  }
}

/** A claim built, or, when the daemon itself fails at it, handed back (after a pause, so a fault does not spin). */
async function remoteClaim(ctx: RemoteBuilddContext, rc: RemoteClaim, options: BuilddLoopOptions): Promise<TaskReport> {
  try {
    return await runRemoteClaim(ctx, rc, options);
  } catch (err) {
    const reason = `the build daemon failed: ${messageOf(err)}`;
    ctx.log.error({ job: rc.claim.jobId, err: messageOf(err) }, reason);
    const released = await ctx.farm.release(rc.claim, reason).then(
      () => true,
      () => false,
    );
    if (!options.once) await pause(ERROR_PAUSE_MS, options.stop);
    return { ...reportBase(rc.claim), status: released ? 'requeued' : 'unrecorded', reason };
  }
}

/**
 * A remote daemon's start: who its token says it is, its host's preflight (tools, sandbox, build
 * root), said to the farm; then the tasks the farm says it still holds: one whose outcome it kept
 * is delivered, any other handed back.
 */
async function startRemote(
  ctx: RemoteBuilddContext,
  options: BuilddLoopOptions,
  report: (r: TaskReport) => void,
): Promise<FarmBuilder | null> {
  const waitFor = { until: () => (options.once ? 0 : Infinity), signal: options.stop };
  let me: FarmBuilder;
  try {
    me = await withFarmRetry(() => ctx.farm.me(), {
      ...waitFor,
      onRetry: (err) => ctx.log.warn({ err: err.message }, 'the farm is unavailable; waiting for it'),
    });
  } catch (err) {
    if (options.stop.aborted && transientFarmError(err)) return null;
    throw err;
  }
  if (me.name !== ctx.name)
    throw new PkgForgeError(
      ErrorCode.usage,
      `The builder token given is builder '${me.name}''s, not '${ctx.name}''s (pkgforge token create --builder ${ctx.name})`,
    );
  if (!me.active)
    throw new PkgForgeError(
      ErrorCode.usage,
      `The platform ${me.platform}/${me.arch} of builder '${ctx.name}' is not active`,
    );
  // The farm's lease settings, not this host's: it is the farm that expires them.
  Object.assign(ctx.settings, { leaseExpiryMs: me.leaseExpiryMs, leaseRenewalMs: me.leaseRenewalMs });
  for (const dir of [ctx.dirs.accepted, ctx.dirs.results]) await mkdir(dir, { recursive: true, mode: 0o755 });
  const { problems, sandbox } = await hostProblems(ctx, me);
  const unable = problems.length > 0 ? `The build environment is incomplete: ${problems.join('; ')}` : null;
  const held = await withFarmRetry(
    () => ctx.farm.start(ctx.host ?? ownInstance(), sandbox.sandbox?.kind ?? null, unable),
    waitFor,
  );
  // Another running instance of this builder: its tasks are not ours to hand back.
  const busy = held.find((c) => c.leaseLive && !leftByThisHost(c.host));
  if (busy)
    throw new PkgForgeError(
      ErrorCode.locked,
      `Builder '${ctx.name}' is already building job ${busy.jobId} on ${busy.host ?? 'another host'} (attempt ${busy.attempt}); run one daemon per builder name`,
    );
  if (sandbox.sandbox) await endLeftovers(sandbox.workspaces!, sandbox.sandbox, ctx.log);
  await settleHeld(ctx, held, options, report);
  // Delivered or handed back first: a host that cannot build can still say what it had built.
  if (unable) throw new PkgForgeError(ErrorCode.directory, `Builder '${ctx.name}': ${unable}`);
  if (sandbox.sandbox?.kind === 'none') ctx.log.warn(`Builder '${ctx.name}' builds WITHOUT a sandbox (sandbox: none)`);
  else ctx.log.info(`Builder '${ctx.name}': ${sandbox.sandbox!.describe()}`);
  return me;
}

/**
 * The tasks the farm says this builder holds from an earlier run: one whose outcome it kept is
 * delivered, any other handed back. Then whatever else its directories hold (jobs the farm no longer
 * gives it, a fetch cut short) is removed: they are its own copies, of nothing it holds.
 */
async function settleHeld(
  ctx: RemoteBuilddContext,
  held: HeldClaim[],
  options: BuilddLoopOptions,
  report: (r: TaskReport) => void,
): Promise<void> {
  for (const claim of held) {
    const lease = keepLease(ctx, claim, options.abort, (renew) => ctx.farm.heartbeat(claim, renew));
    try {
      const pending = await readPendingOutcome(ctx.dirs.results, claim);
      if (pending) {
        ctx.log.warn(
          { job: claim.jobId, attempt: claim.attempt },
          `Delivering the outcome '${pending.status}' of ${claim.jobId} (attempt ${claim.attempt}) that was kept but not delivered`,
        );
        report(await deliver(ctx, claim, pending, lease, options));
      } else report(await handBack(ctx, claim, lease, options, 'the builder was restarted before the build ended'));
    } finally {
      lease.stop();
    }
  }
  const keep = new Set(held.map((c) => c.jobId));
  for (const dir of [ctx.dirs.accepted, ctx.dirs.results])
    for (const name of await readdir(dir))
      if (!keep.has(name)) await rm(join(dir, name), { recursive: true, force: true });
}

/**
 * The remote build daemon: start (startRemote), then claim and build until stopped. A farm that
 * cannot be reached is waited for, trying again within 5 s at the most.
 */
export async function runRemoteBuildd(ctx: RemoteBuilddContext, options: BuilddLoopOptions): Promise<TaskReport[]> {
  const reports: TaskReport[] = [];
  const report = (r: TaskReport) => (reports.push(r), options.onTask?.(r));
  const me = await startRemote(ctx, options, report);
  if (!me) return reports;
  const host = ctx.host ?? ownInstance();
  ctx.log.info(`Starting build daemon '${ctx.name}' for ${me.platform}/${me.arch} (farm: ${ctx.farm.server})`);
  let backoff = 200;
  let away = false;
  let idle = false;
  try {
    while (!options.stop.aborted) {
      let rc: RemoteClaim | null;
      try {
        rc = await ctx.farm.claim(host, options.once ? 0 : CLAIM_WAIT_SECONDS, options.stop);
      } catch (err) {
        if (options.stop.aborted) break;
        if (!transientFarmError(err)) throw err;
        if (!away) ctx.log.error({ err: messageOf(err) }, `Failed to claim a task: ${messageOf(err)}; trying again`);
        away = true;
        await pause(backoff, options.stop);
        backoff = Math.min(backoff * 2, 5000);
        continue;
      }
      if (away) ctx.log.info('the farm answers again');
      away = false;
      backoff = 200;
      if (rc) {
        idle = false;
        report(await remoteClaim(ctx, rc, options));
        if (options.once) break;
        continue;
      }
      if (options.once) break;
      if (!idle) ctx.log.info(`Idle: waiting for tasks of ${me.platform}/${me.arch}`);
      idle = true;
    }
  } finally {
    await ctx.farm
      .stopped()
      .catch((err) => ctx.log.warn({ err: messageOf(err) }, 'could not tell the farm that this builder stopped'));
    ctx.log.info(`Stopping build daemon '${ctx.name}'`);
  }
  return reports;
}
