/**
 * Claims, leases and attempts: how build daemons take tasks and give them back. One file per
 * operation under attempts/, each with its statement and its rule for running beside others.
 *
 * A claim is one statement that moves the oldest waiting task of a platform to `building`, bumps
 * its attempt number and gives the builder a lease. The holder renews the lease with heartbeats;
 * a task whose lease runs out goes back to `needs build` (keeping its place in the queue). Every
 * result names its attempt number, and a result for an attempt that is no longer current is
 * refused, so a daemon that lost its lease cannot overwrite a newer attempt.
 */
export * from './attempts/types.ts';
export * from './attempts/builder-identity.ts';
export * from './attempts/claims-held-by.ts';
export * from './attempts/claim-next-task.ts';
export * from './attempts/heartbeat.ts';
export * from './attempts/accept-attempt.ts';
export * from './attempts/finish-attempt.ts';
export * from './attempts/release-claim.ts';
export * from './attempts/requeue-abandoned.ts';
export * from './attempts/list-attempts.ts';
