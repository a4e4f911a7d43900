import { claimStatus, heartbeat, type Claim, type HeartbeatAnswer } from '../registry/attempts.ts';
import type { Registry } from '../registry/registry.ts';
import { transientRegistryError } from '../registry/retry.ts';
import type { Log } from '../util/log.ts';
import type { BuilddSettings } from './setup.ts';

/** How often a building daemon looks for a cancel at the latest. */
const CANCEL_CHECK_MS = 2000;

/** A claim's lease, kept alive while its attempt runs. */
export interface Lease {
  /** Aborted when the task was cancelled, the lease was lost, or the daemon must stop now. */
  readonly signal: AbortSignal;
  /** What the registry said, once it said the attempt must stop. */
  heard(): 'cancelled' | 'lost' | null;
  /** Until when (this host's clock) the lease may still be valid: the last renewal plus lease_expiry. */
  validUntil(): number;
  /** Tells the keeper that the lease was renewed by another call (acceptAttempt). */
  renewed(): void;
  /** Stops renewing; safe to call more than once. */
  stop(): void;
}

/** Asks whoever holds the leases: renew it (`renew`), or only say whether the attempt should go on. */
export type LeaseAsk = (renew: boolean) => Promise<HeartbeatAnswer>;

/** The registry itself holds the lease (a daemon with database access). */
export const registryAsk =
  (registry: Registry, claim: Claim, leaseExpiryMs: number): LeaseAsk =>
  (renew) =>
    renew ? heartbeat(registry, claim, leaseExpiryMs) : claimStatus(registry, claim);

/**
 * Renews the claim's lease every lease_renewal and, in between, reads the task's status every 2 s
 * at most, so a cancel stops the build within seconds whatever the lease settings. A registry (or
 * farm, for a remote builder: `ask`) that does not answer is said once, and again when it is back.
 */
export function keepLease(
  ctx: { registry?: Registry; settings: Pick<BuilddSettings, 'leaseRenewalMs' | 'leaseExpiryMs'>; log: Log },
  claim: Claim,
  abort: AbortSignal,
  ask: LeaseAsk = registryAsk(ctx.registry!, claim, ctx.settings.leaseExpiryMs),
): Lease {
  const { settings, log } = ctx;
  const controller = new AbortController();
  const onAbort = () => controller.abort(new Error('the build daemon was told to stop now'));
  if (abort.aborted) onAbort();
  else abort.addEventListener('abort', onAbort, { once: true });
  let heard: 'cancelled' | 'lost' | null = null;
  const tickMs = Math.min(settings.leaseRenewalMs, CANCEL_CHECK_MS);
  let lastRenewal = Date.now();
  let busy = false;
  let failing = false;
  const beat = setInterval(() => {
    if (busy || heard) return;
    busy = true;
    const renew = Date.now() - lastRenewal >= settings.leaseRenewalMs - tickMs / 2;
    ask(renew)
      .then(
        (answer) => {
          if (failing) log.info({ job: claim.jobId }, 'the registry answers heartbeats again');
          failing = false;
          if (renew && answer === 'ok') lastRenewal = Date.now();
          if (answer === 'ok' || heard) return;
          heard = answer;
          log.warn(
            { job: claim.jobId, attempt: claim.attempt },
            answer === 'cancelled'
              ? 'the task was cancelled, stopping its build'
              : 'the lease on this task was lost, stopping its build',
          );
          controller.abort(
            new Error(
              answer === 'cancelled' ? 'the task was cancelled' : 'the lease on this task was lost to another builder',
            ),
          );
        },
        (err: Error) => {
          if (!failing)
            log.warn(
              { job: claim.jobId, err: err.message },
              `heartbeat failed${transientRegistryError(err) ? ` (${transientRegistryError(err)})` : ''}; will keep trying`,
            );
          failing = true;
        },
      )
      .finally(() => (busy = false));
  }, tickMs);
  return {
    signal: controller.signal,
    heard: () => heard,
    validUntil: () => lastRenewal + settings.leaseExpiryMs,
    renewed: () => void (lastRenewal = Date.now()),
    stop: () => {
      clearInterval(beat);
      abort.removeEventListener('abort', onAbort);
    },
  };
}
