import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_ACCEPTED_RESERVE,
  DEFAULT_SUBMISSION_LIMITS,
  type FreeSpace,
  type SpaceReserve,
  type SubmissionLimits,
} from '../core/limits.ts';
import { MANIFEST_FILE, MANIFEST_MAX_BYTES, parseManifest, type Manifest } from '../core/manifest.ts';
import { printable } from '../core/names.ts';
import { IN_FLIGHT_JOB_STATUSES, JobStatus } from '../core/terms.ts';
import type { Target } from '../core/targets.ts';
import { findJob, insertJobIn, markJobValidIn, setJobStatus, type Job } from '../registry/jobs.ts';
import { recordRefusedEntry } from '../registry/refused-entries.ts';
import { WriteBatch, type BatchedWrite } from '../registry/write-batch.ts';
import type { Registry } from '../registry/registry.ts';
import { isTransientRegistryError, withRegistryRetry, type RetryOptions } from '../registry/retry.ts';
import { jobRegistration } from './register-job.ts';
import { ErrorCode, isPkgForgeError, messageOf } from '../util/errors.ts';
import { childPath, removeTree } from '../util/fs-safe.ts';
import type { Log } from '../util/log.ts';
import { userNameOf } from '../util/users.ts';
import { discardEntry, entryMessage, type QueueEntry } from './queue.ts';
import { AcceptedSpace, asSpaceProblem, freeSpaceOf, SpaceProblem } from './space.ts';
import { checkJobFiles, commitStagedJob, stageJob, verifyCopy, type StagedJob } from './transfer.ts';
import { JobProblem } from './job-problem.ts';

export interface IncomingContext {
  registry: Registry;
  incoming: string;
  accepted: string;
  /** Grace period in ms for incomplete jobs. */
  waitForJobMs: number;
  log: Log;
  retry?: RetryOptions;
  now?: () => number;
  /** `max_package_size`, `max_job_size` (defaults when unset). */
  limits?: SubmissionLimits;
  /** `accepted_reserve`: free space every copy into accepted must leave (default 1 GiB). */
  reserve?: SpaceReserve;
  /** `dsc_keyrings`: the keyring a bucket's .dsc jobs must be signed by (`'*'` for any other bucket). */
  dscKeyrings?: Readonly<Record<string, string>>;
  /** `buckets`: the buckets jobs may go into (null or unset: any). */
  buckets?: readonly string[] | null;
  /** How full the accepted file system is (statfs; tests replace it). */
  freeSpace?: (dir: string) => Promise<FreeSpace>;
}

/**
 * What the entries of one pass share: the book of free space in accepted (copies running at once
 * draw on the same room) and the registry writes, committed together (a WriteBatch).
 */
export interface PassShared {
  space: AcceptedSpace;
  writes: WriteBatch;
}

/** How long a registry write waits for others to share its commit, unless every entry is waiting already. */
const COMMIT_LINGER_MS = 5;

/** `entries`: how many entries of the pass are in flight (a commit need not wait for more writes than that). */
export function passShared(ctx: IncomingContext, entries: () => number = () => 1): PassShared {
  return {
    space: new AcceptedSpace(ctx.accepted, ctx.reserve ?? DEFAULT_ACCEPTED_RESERVE, ctx.freeSpace ?? freeSpaceOf),
    writes: new WriteBatch(ctx.registry, { writers: entries, lingerMs: COMMIT_LINGER_MS }),
  };
}

/** What happened to one incoming entry in one pass. */
export type EntryOutcome =
  | { kind: 'registered'; entry: string; job: string; targets: Target[] }
  | { kind: 'waiting'; entry: string; job: string | null; reason: string }
  /** The farm cannot take the job now (no room in accepted): kept, whatever the grace period, and retried on later passes. */
  | { kind: 'deferred'; entry: string; job: string; reason: string }
  | { kind: 'invalid'; entry: string; job: string | null; reason: string }
  | { kind: 'fail'; entry: string; job: string; reason: string }
  | { kind: 'rejected'; entry: string; job: string | null; reason: string }
  | { kind: 'cleaned'; entry: string; job: string; reason: string }
  /** Something unexpected (a file system error, a bug): the entry is left for the next pass. */
  | { kind: 'error'; entry: string; job: null; reason: string };

/**
 * Takes one incoming entry through stages 2–6. Registry errors are retried with back-off and, if
 * they persist, thrown to the caller with the entry left in place: a database outage never costs a
 * submission.
 */
export async function processEntry(ctx: IncomingContext, entry: QueueEntry): Promise<EntryOutcome> {
  const loaded = await loadEntry(ctx, entry);
  return 'kind' in loaded ? loaded : processLoadedEntry(ctx, entry, loaded.manifest);
}

/** Stage 2, loading: the manifest, or the outcome for an entry that cannot be loaded (yet). */
export async function loadEntry(
  ctx: IncomingContext,
  entry: QueueEntry,
): Promise<{ manifest: Manifest } | EntryOutcome> {
  const { log } = ctx;
  log.info({ entry: entry.name }, `Processing ${printable(entry.path, 400)}`);
  let manifest: Manifest;
  try {
    manifest = await loadManifest(entry);
  } catch (err) {
    const reason = entryMessage(entry, err);
    const soft = !(err instanceof JobProblem) || err.soft;
    if (soft && !(await isOverdue(ctx, entry))) {
      log.info({ entry: entry.name, reason }, 'job not loadable yet, will retry until the grace period ends');
      return { kind: 'waiting', entry: entry.name, job: null, reason };
    }
    log.error({ entry: entry.name, reason }, `Failed to load job ${printable(entry.path, 400)}`);
    await recordRefusal(ctx, entry, reason);
    await discardEntry(entry.path);
    return { kind: 'invalid', entry: entry.name, job: null, reason };
  }
  manifest.submitter = userNameOf(entry.uid);
  manifest.subtime = Math.floor(entry.ctimeMs / 1000);
  return { manifest };
}

/**
 * An entry whose directory the processor cannot open (its owner made it unreadable): said on every
 * pass, and removed like any other entry once the grace period is over.
 */
export async function unreadableEntry(ctx: IncomingContext, entry: QueueEntry, why: string): Promise<EntryOutcome> {
  const reason = `${printable(entry.name)}: the incoming processor cannot read this job directory (${printable(why, 400)}); its owner must make it readable to the processor (chmod go+rX)`;
  if (!(await isOverdue(ctx, entry))) {
    ctx.log.info({ entry: entry.name, reason }, 'job directory unreadable, will retry until the grace period ends');
    return { kind: 'waiting', entry: entry.name, job: null, reason };
  }
  const refused = `${reason}; refused after the grace period of ${Math.round(ctx.waitForJobMs / 1000)} s`;
  await recordRefusal(ctx, entry, refused);
  const removal = await discardEntry(entry.path).then(
    () => '',
    (err: unknown) => `; it could not be removed (${messageOf(err)}): an administrator must remove it`,
  );
  ctx.log.error({ entry: entry.name, reason: refused + removal }, `Refused ${printable(entry.path, 400)}`);
  return { kind: 'invalid', entry: entry.name, job: null, reason: refused + removal };
}

const isOverdue = async (ctx: IncomingContext, entry: QueueEntry) =>
  (ctx.now?.() ?? Date.now()) - (await entry.lastChange()) > ctx.waitForJobMs;

/**
 * A registry write, committed with the pass's other writes (WriteBatch) and retried with back-off
 * while the registry is away. It resolves once its transaction has committed.
 */
type Db = <T>(write: BatchedWrite<T>) => Promise<T>;

/** How a registry write waits out an outage: ctx.retry's back-off, each retry logged. */
const registryRetry = (ctx: IncomingContext): RetryOptions => ({
  ...ctx.retry,
  onRetry: (err, n, ms) =>
    ctx.log.warn({ err: err.message, attempt: n, delayMs: ms }, 'registry unavailable, retrying'),
});

/** Stages 2 (the registry part) to 6 for an entry whose manifest has been loaded. */
export async function processLoadedEntry(
  ctx: IncomingContext,
  entry: QueueEntry,
  manifest: Manifest,
  shared = passShared(ctx),
): Promise<EntryOutcome> {
  const db: Db = (write) => withRegistryRetry(() => shared.writes.run(write), registryRetry(ctx));
  const recorded = await recordJob(ctx, entry, manifest, db);
  if ('kind' in recorded) return recorded;
  if (recorded.resuming && (await acceptedCopyComplete(ctx, manifest))) return register(ctx, entry, manifest, db);
  const staged = await validate(ctx, entry, manifest, shared.space, db);
  if ('kind' in staged) return staged;
  return transfer(ctx, entry, manifest, staged, db);
}

/**
 * Stage 2, the registry part: the job recorded, or found recorded by an earlier pass over this very
 * entry (same name, device and inode: it was waiting for files, or a processor stopped mid-way).
 * Anything else with the same id is a reuse of the id, refused.
 */
async function recordJob(
  ctx: IncomingContext,
  entry: QueueEntry,
  manifest: Manifest,
  db: Db,
): Promise<{ job: Job; resuming: boolean } | EntryOutcome> {
  const reused = () => reject(ctx, entry, manifest.id, `A job with ID ${manifest.id} has been previously registered`);
  const ownEntry = (j: Job) => j.incomingEntry === entry.name && j.incomingInode === entry.inode;
  let recorded: { job: Job; inserted: boolean };
  try {
    // The look-up and the insert in one write: the job is found, or recorded, never both.
    recorded = await db(async (trx) => {
      const found = await findJob(trx, manifest.id);
      if (found) return { job: found, inserted: false };
      const facts = {
        submitter: manifest.submitter,
        submittedAt: entry.ctimeMs,
        incomingEntry: entry.name,
        incomingInode: entry.inode,
      };
      return { job: await insertJobIn(trx, manifest, facts), inserted: true };
    });
  } catch (err) {
    if (!isPkgForgeError(err, ErrorCode.jobId)) throw err;
    // Another writer took the id between our look-up and insert (PostgreSQL's read committed).
    return reused();
  }
  const { job } = recorded;
  if (recorded.inserted) {
    ctx.log.info({ job: job.id }, `Registered job ${job.id}`);
    return { job, resuming: false };
  }
  // Found: an earlier pass over this entry recorded it (or this pass did, and the reply to the
  // commit was lost: the retry finds it), or it is someone else's.
  if (!ownEntry(job)) return reused();
  if (!IN_FLIGHT_JOB_STATUSES.includes(job.status)) {
    // A processor stopped after the job's last status change but before removing the entry.
    ctx.log.info({ job: job.id }, `Removing ${entry.path}: job ${job.id} is already ${job.status}`);
    await discardEntry(entry.path);
    return { kind: 'cleaned', entry: entry.name, job: job.id, reason: `job is already ${job.status}` };
  }
  return { job, resuming: true };
}

/**
 * Whether a previous pass got as far as a complete accepted/<id> before it was stopped. Only a job
 * recorded by an earlier pass can own one; an incomplete copy is removed, to be made again.
 */
async function acceptedCopyComplete(ctx: IncomingContext, manifest: Manifest): Promise<boolean> {
  const acceptedDir = childPath(ctx.accepted, manifest.id);
  if (!(await lstat(acceptedDir).catch(() => null))) return false;
  try {
    await verifyCopy(acceptedDir, manifest);
    ctx.log.info({ job: manifest.id }, `Resuming job ${manifest.id}: its accepted copy is complete and verified`);
    return true;
  } catch (err) {
    ctx.log.warn(
      { job: manifest.id, reason: messageOf(err) },
      'the accepted copy of an interrupted job is incomplete, copying again',
    );
    await removeTree(acceptedDir);
    return false;
  }
}

/**
 * Stage 3, validation: limits, files present, right size and headers, then checksums and headers
 * again on a private copy. A job still in transit waits until the grace period ends; one the farm
 * has no room for is deferred; any other problem ends it with the reason.
 */
async function validate(
  ctx: IncomingContext,
  entry: QueueEntry,
  manifest: Manifest,
  space: AcceptedSpace,
  db: Db,
): Promise<StagedJob | EntryOutcome> {
  let staged: StagedJob;
  try {
    if (ctx.buckets && !ctx.buckets.includes(manifest.bucket))
      throw new JobProblem(
        `the bucket '${manifest.bucket}' is not one this farm accepts (buckets: ${ctx.buckets.join(', ')})`,
        false,
      );
    await checkJobFiles(entry.base ?? entry.path, manifest, ctx.limits ?? DEFAULT_SUBMISSION_LIMITS);
    const keyring = ctx.dscKeyrings?.[manifest.bucket] ?? ctx.dscKeyrings?.['*'] ?? null;
    staged = await stageJob(entry.base ?? entry.path, ctx.accepted, manifest, { space, keyring });
  } catch (err) {
    if (err instanceof SpaceProblem) return defer(ctx, entry, manifest, err.message, db);
    if (!(err instanceof JobProblem)) {
      // The file system failed (an I/O error): try again on later passes, and give up
      // with the reason once the grace period is over, rather than retrying for ever.
      if (isTransientRegistryError(err) || !(await isOverdue(ctx, entry))) throw err;
      const reason = `Failed to copy job ${manifest.id} into the accepted directory: ${entryMessage(entry, err)}`;
      return endJob(ctx, entry, manifest.id, JobStatus.fail, reason, db);
    }
    if (err.soft && !(await isOverdue(ctx, entry))) {
      ctx.log.info(
        { job: manifest.id, reason: err.message },
        `Invalid job ${manifest.id}, will retry: packages may still be in transit`,
      );
      return { kind: 'waiting', entry: entry.name, job: manifest.id, reason: err.message };
    }
    const reason = err.soft
      ? `${err.message}; gave up after the grace period of ${Math.round(ctx.waitForJobMs / 1000)} s`
      : err.message;
    return endJob(ctx, entry, manifest.id, JobStatus.invalid, reason, db);
  }
  const facts = staged.sources.map((s, position) => ({
    position,
    name: s.name,
    version: s.version,
    release: s.release,
  }));
  await db((trx) => markJobValidIn(trx, manifest.id, facts));
  ctx.log.info({ job: manifest.id }, `Validated job ${manifest.id}, will accept`);
  return staged;
}

/** Stage 4, transfer: the staged copy becomes accepted/<id>, then stages 5 and 6. */
async function transfer(
  ctx: IncomingContext,
  entry: QueueEntry,
  manifest: Manifest,
  staged: StagedJob,
  db: Db,
): Promise<EntryOutcome> {
  try {
    await commitStagedJob(staged, ctx.accepted, manifest);
  } catch (err) {
    const full = asSpaceProblem(err, `the manifest of job ${manifest.id}`);
    if (full) return defer(ctx, entry, manifest, full.message, db);
    const reason = `Failed to transfer job ${manifest.id} to the accepted directory: ${messageOf(err)}`;
    return endJob(ctx, entry, manifest.id, JobStatus.fail, reason, db);
  }
  return register(ctx, entry, manifest, db);
}

/** A job that ends here (invalid, or failed): its status and reason recorded, its entry removed. */
async function endJob(
  ctx: IncomingContext,
  entry: QueueEntry,
  id: string,
  status: typeof JobStatus.invalid | typeof JobStatus.fail,
  reason: string,
  db: Db,
): Promise<EntryOutcome> {
  ctx.log.error({ job: id, reason }, status === JobStatus.invalid ? `Invalid job ${id}` : reason);
  await db((trx) => setJobStatus(trx, id, status, reason));
  await discardEntry(entry.path);
  return { kind: status, entry: entry.name, job: id, reason };
}

/** Stages 5 and 6: tasks and the `registered` status in one transaction, then the entry goes. */
async function register(ctx: IncomingContext, entry: QueueEntry, manifest: Manifest, db: Db): Promise<EntryOutcome> {
  await db((trx) => setJobStatus(trx, manifest.id, JobStatus.accepted));
  ctx.log.info({ job: manifest.id }, `Successfully accepted job ${manifest.id}`);
  const registration = await jobRegistration(ctx.registry, ctx.accepted, manifest);
  const targets = await db(registration);
  ctx.log.info(
    { job: manifest.id, tasks: targets.map((t) => `${t.platform}/${t.arch}`) },
    `Registered ${targets.length} tasks for ${manifest.id}`,
  );
  await discardEntry(entry.path);
  return { kind: 'registered', entry: entry.name, job: manifest.id, targets };
}

/**
 * The farm has no room for the job now: the job stays `incoming` with the reason on it, where its
 * submitter sees it, and its entry stays for a later pass. Other jobs go on.
 */
async function defer(
  ctx: IncomingContext,
  entry: QueueEntry,
  manifest: Manifest,
  reason: string,
  db: Db,
): Promise<EntryOutcome> {
  ctx.log.warn({ job: manifest.id, reason }, `Job ${manifest.id} waits for space in the accepted directory`);
  await db((trx) => setJobStatus(trx, manifest.id, JobStatus.incoming, reason));
  return { kind: 'deferred', entry: entry.name, job: manifest.id, reason };
}

async function reject(ctx: IncomingContext, entry: QueueEntry, id: string, reason: string): Promise<EntryOutcome> {
  ctx.log.error({ entry: entry.name, job: id }, reason);
  // The job of that id is another's: this submission has no record of its own but this one.
  await recordRefusal(ctx, entry, reason);
  await discardEntry(entry.path);
  return { kind: 'rejected', entry: entry.name, job: id, reason };
}

/**
 * An entry refused before a job record of its own could exist, recorded under its directory's name
 * before it is removed, so its submitter finds out why (the jobs page, `pkgforge jobs`). A registry
 * away through the retries leaves the entry for the next pass, like any registry write.
 */
async function recordRefusal(ctx: IncomingContext, entry: QueueEntry, reason: string): Promise<void> {
  const refusal = {
    entry: printable(entry.name, 300),
    entryKey: entry.inode,
    submitter: userNameOf(entry.uid),
    reason,
    refusedAt: ctx.now?.() ?? Date.now(),
  };
  await withRegistryRetry(() => recordRefusedEntry(ctx.registry.db, refusal), registryRetry(ctx));
}

async function loadManifest(entry: QueueEntry): Promise<Manifest> {
  const path = join(entry.base ?? entry.path, MANIFEST_FILE);
  const label = `${printable(entry.name)}/${MANIFEST_FILE}`;
  // lstat first: a FIFO or device opened for reading would block the processor for good.
  const st = await lstat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (!st) throw new JobProblem(`${label}: the manifest has not arrived`, true);
  if (st.isSymbolicLink()) throw new JobProblem(`${label}: the manifest is a symbolic link`, false);
  if (!st.isFile()) throw new JobProblem(`${label}: the manifest is not a regular file`, false);
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new JobProblem(`${label}: the manifest has not arrived`, true);
    if (code === 'ELOOP') throw new JobProblem(`${label}: the manifest is a symbolic link`, false);
    throw err;
  }
  try {
    const opened = await fh.stat();
    if (!opened.isFile()) throw new JobProblem(`${label}: the manifest is not a regular file`, false);
    // Read at most one byte past the limit, whatever the file grows to meanwhile, into a buffer
    // of the size the file has now (a manifest is a few hundred bytes: a megabyte for each one
    // cost more than the rest of reading it), grown only if the file grows.
    const limit = MANIFEST_MAX_BYTES + 1;
    let buf = Buffer.allocUnsafe(Math.min(limit, opened.size + 1));
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, length);
      length += bytesRead;
      if (bytesRead === 0 || length >= limit) break;
      if (length === buf.length) {
        const bigger = Buffer.allocUnsafe(Math.min(limit, buf.length * 2));
        buf.copy(bigger, 0, 0, length);
        buf = bigger;
      }
    }
    if (length > MANIFEST_MAX_BYTES)
      throw new JobProblem(`${label}: the manifest is larger than ${MANIFEST_MAX_BYTES} bytes`, false);
    try {
      return parseManifest(buf.toString('utf8', 0, length), label);
    } catch (err) {
      // A manifest written in place may be half-written: soft until the grace period ends. What
      // no more writing can put right (a package name that is unsafe) is refused at once.
      if (isPkgForgeError(err)) throw new JobProblem(err.message, err.code === ErrorCode.manifest);
      throw err;
    }
  } finally {
    await fh.close();
  }
}
