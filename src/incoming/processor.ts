import { watch, type FSWatcher } from 'node:fs';
import { DEFAULTS } from '../config/defaults.ts';
import { access, constants, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isTransientRegistryError } from '../registry/retry.ts';
import { startLeaseReaper } from '../registry/lease-reaper.ts';
import { ErrorCode, PkgForgeError, messageOf } from '../util/errors.ts';
import { assertOwnerOnlyWritable, childPath, removeTree } from '../util/fs-safe.ts';
import { MANIFEST_FILE, parseManifest } from '../core/manifest.ts';
import { JobStatus } from '../core/terms.ts';
import { listInFlightJobsOlderThan, setJobStatus } from '../registry/jobs.ts';
import { registerJob } from './register-job.ts';
import { printable } from '../core/names.ts';
import {
  loadEntry,
  passShared,
  processLoadedEntry,
  unreadableEntry,
  type EntryOutcome,
  type IncomingContext,
} from './process-entry.ts';
import { entryMessage, openEntry, REMOVING_PREFIX, scanQueue, type QueueEntry } from './queue.ts';
import { takeProcessorLock } from './lock.ts';
import { removeStaleStaging, verifyCopy } from './transfer.ts';

export interface PassResult {
  /** False when another processor held the lock and this pass did nothing. */
  ran: boolean;
  outcomes: EntryOutcome[];
  cruftRemoved: string[];
  /** Set when the registry stayed unreachable: the rest of the queue was left for the next pass. */
  registryError?: string;
}

/** Checks the directories before a daemon starts, with messages that say what to fix. */
export async function preflight(dirs: { incoming: string; accepted: string; tmpdir?: string }): Promise<void> {
  for (const [key, dir] of [
    ['incoming', dirs.incoming],
    ['accepted', dirs.accepted],
  ] as const) {
    const st = await stat(dir).catch(() => null);
    if (!st?.isDirectory()) {
      throw new PkgForgeError(
        ErrorCode.directory,
        `The ${key} jobs directory '${dir}' does not exist (run \`pkgforge init\`, or set '${key}' in the configuration)`,
      );
    }
  }
  await assertOwnerOnlyWritable(dirs.accepted, 'accepted');
  const probe = join(dirs.accepted, `.pkgforge-probe-${process.pid}`);
  try {
    await writeFile(probe, 'test\n');
    await unlink(probe);
  } catch (err) {
    throw new PkgForgeError(
      ErrorCode.directory,
      `The accepted jobs directory '${dirs.accepted}' is not writable: ${messageOf(err)}`,
    );
  }
  await access(dirs.incoming, constants.R_OK | constants.W_OK).catch((err) => {
    throw new PkgForgeError(
      ErrorCode.directory,
      `The incoming jobs directory '${dirs.incoming}' cannot be read and cleaned: ${messageOf(err)}`,
    );
  });
  if (dirs.tmpdir) await mkdir(dirs.tmpdir, { recursive: true, mode: DEFAULTS.tmpdirMode });
}

/**
 * One pass over the incoming queue, under a lock in the accepted directory so that two processors
 * on the same directories never take the same job. Entries are processed oldest first.
 */
export async function runIncomingPass(
  ctx: IncomingContext,
  options: { signal?: AbortSignal } = {},
): Promise<PassResult> {
  const lock = await takeProcessorLock(ctx.accepted);
  if (!lock) {
    ctx.log.info('another incoming processor holds the lock, skipping this pass');
    return { ran: false, outcomes: [], cruftRemoved: [] };
  }
  try {
    const result: PassResult = { ran: true, outcomes: [], cruftRemoved: [] };
    for (const name of await removeStaleStaging(ctx.accepted))
      ctx.log.warn(`Removed ${name} from accepted, left by an interrupted transfer`);
    let scan;
    try {
      scan = await scanQueue(ctx.incoming);
    } catch (err) {
      ctx.log.error(`Could not load a job queue from incoming directory '${ctx.incoming}': ${messageOf(err)}`);
      return result;
    }
    for (const path of scan.cruft) {
      if (!basename(path).startsWith(REMOVING_PREFIX))
        ctx.log.warn(`Removing ${printable(path, 400)}, not a job directory`);
      await removeTree(path).catch((err) =>
        ctx.log.error(`Could not remove ${printable(path, 400)}: ${printable(messageOf(err), 600)}`),
      );
      result.cruftRemoved.push(path);
    }
    const now = ctx.now?.() ?? Date.now();
    for (const partial of scan.partial) {
      // A submitter still writing names its directory with a leading dot; one abandoned for longer
      // than the grace period is removed.
      if (now - (await partial.lastChange()) > ctx.waitForJobMs) {
        ctx.log.warn(`Removing ${printable(partial.path, 400)}, an abandoned partial submission`);
        await removeTree(partial.path);
        result.cruftRemoved.push(partial.path);
      }
    }
    // Stop starting entries if the lock was lost (this process stalled past its stale time).
    const stop = options.signal ? AbortSignal.any([options.signal, lock.lost]) : lock.lost;
    await processEntries(ctx, scan.entries, result, stop);
    if (lock.lost.aborted)
      ctx.log.error('the incoming lock was taken over during the pass; stopped taking new entries');
    else if (!result.registryError) {
      const present = new Set([...scan.entries, ...scan.partial].map((e) => e.name));
      result.outcomes.push(
        ...(await sweepOrphans(ctx, present).catch(
          (err) => (ctx.log.error(`could not look for interrupted jobs: ${messageOf(err)}`), []),
        )),
      );
    }
    return result;
  } finally {
    await lock.release();
  }
}

/** Entries processed at once: file-system and database waits overlap, and one slow job does not hold up the rest. */
const CONCURRENCY = 8;

/**
 * Loads the entries in queue order, then processes up to CONCURRENCY at once. Two entries naming
 * the same job id are processed one after the other, oldest first, so the older one keeps the id.
 */
async function processEntries(
  ctx: IncomingContext,
  entries: QueueEntry[],
  result: PassResult,
  signal?: AbortSignal,
): Promise<void> {
  const running = new Set<Promise<void>>();
  const byJobId = new Map<string, Promise<void>>();
  // The free space in accepted, and the registry's commits, are shared by the entries running at once.
  const shared = passShared(ctx, () => running.size);
  const handle = (entry: QueueEntry, err: unknown) => {
    if (!isTransientRegistryError(err)) {
      // Left in place: the next pass tries again, and the grace period still applies.
      const reason = entryMessage(entry, err);
      ctx.log.error({ entry: entry.name, err: reason }, `Failed to process ${printable(entry.path, 400)}`);
      result.outcomes.push({ kind: 'error', entry: entry.name, job: null, reason });
      return;
    }
    // The registry stayed unreachable through the retries: leave this and later entries in
    // place for the next pass rather than losing them.
    result.registryError ??= `${printable(entry.name)}: ${messageOf(err)}`;
    ctx.log.error({ entry: entry.name, err: messageOf(err) }, 'registry error, leaving the queue for the next pass');
  };
  for (const scanned of entries) {
    if (signal?.aborted || result.registryError) break;
    const opened = await openEntry(scanned);
    if (!opened) continue; // gone, or replaced since the scan: the next pass sees what is there now
    if ('unreadable' in opened) {
      await unreadableEntry(ctx, scanned, opened.unreadable).then(
        (o) => result.outcomes.push(o),
        (err: unknown) => handle(scanned, err),
      );
      continue;
    }
    const { entry, close } = opened;
    let loaded;
    try {
      loaded = await loadEntry(ctx, entry);
    } catch (err) {
      handle(entry, err);
      await close();
      continue;
    }
    if ('kind' in loaded) {
      result.outcomes.push(loaded);
      await close();
      continue;
    }
    const { manifest } = loaded;
    const before = byJobId.get(manifest.id) ?? Promise.resolve();
    const work = before
      .then(() => (result.registryError ? null : processLoadedEntry(ctx, entry, manifest, shared)))
      .then(
        (outcome) => void (outcome && result.outcomes.push(outcome)),
        (err: unknown) => handle(entry, err),
      )
      .finally(close);
    byJobId.set(manifest.id, work);
    running.add(work);
    void work.finally(() => running.delete(work));
    if (running.size >= CONCURRENCY) await Promise.race(running);
  }
  await Promise.all(running);
}

/** File-system events come in bursts (a directory renamed into place, files inside it): one pass after a short pause serves them all. */
const EVENT_DEBOUNCE_MS = 10;

/**
 * Finishes jobs left in flight (incoming, valid, accepted) whose incoming directory is gone, once
 * they are older than the grace period: a job whose accepted copy is complete is registered; any
 * other fails with the reason and loses its partial copy. Without this, such a job would wait for ever.
 */
async function sweepOrphans(ctx: IncomingContext, present: Set<string>): Promise<EntryOutcome[]> {
  const cutoff = (ctx.now?.() ?? Date.now()) - ctx.waitForJobMs;
  const jobs = await listInFlightJobsOlderThan(ctx.registry.db, cutoff);
  const outcomes: EntryOutcome[] = [];
  for (const job of jobs) {
    if (job.incomingEntry !== null && present.has(job.incomingEntry)) continue;
    const entry = job.incomingEntry ?? job.uuid;
    const acceptedDir = childPath(ctx.accepted, job.uuid);
    try {
      const manifest = parseManifest(
        await readFile(join(acceptedDir, MANIFEST_FILE), 'utf8'),
        `accepted/${job.uuid}/${MANIFEST_FILE}`,
      );
      await verifyCopy(acceptedDir, manifest);
      await setJobStatus(ctx.registry.db, job.uuid, JobStatus.accepted);
      const targets = await registerJob(ctx.registry, ctx.accepted, manifest);
      ctx.log.warn({ job: job.uuid }, `Registered interrupted job ${job.uuid} from its verified accepted copy`);
      outcomes.push({ kind: 'registered', entry, job: job.uuid, targets });
    } catch {
      const reason = 'its submission left the incoming directory before it was accepted';
      await removeTree(acceptedDir);
      await setJobStatus(ctx.registry.db, job.uuid, JobStatus.fail, reason);
      ctx.log.error({ job: job.uuid }, `Job ${job.uuid} failed: ${reason}`);
      outcomes.push({ kind: 'fail', entry, job: job.uuid, reason });
    }
  }
  return outcomes;
}

export interface IncomingDaemonOptions {
  /** Seconds between rescans when no file-system event arrives. */
  pollSeconds: number;
  signal: AbortSignal;
  /** Told after every pass (tests and `serve` follow progress through it). */
  onPass?: (result: PassResult) => void;
}

/**
 * Processes the queue until `signal` aborts: a pass at start, then whenever something changes in
 * incoming (file-system events, debounced) and at least every poll interval. The pass in hand is
 * finished before it returns.
 */
export async function runIncomingDaemon(ctx: IncomingContext, options: IncomingDaemonOptions): Promise<void> {
  const { signal } = options;
  let wake: (() => void) | null = null;
  let pending = true;
  const poke = () => {
    pending = true;
    wake?.();
  };
  let watcher: FSWatcher | null = null;
  try {
    watcher = watch(ctx.incoming, { recursive: true }, () => setTimeout(poke, EVENT_DEBOUNCE_MS));
  } catch {
    watcher = watch(ctx.incoming, () => setTimeout(poke, EVENT_DEBOUNCE_MS));
  }
  watcher.on('error', (err) => ctx.log.warn(`file-system events unavailable (${messageOf(err)}); polling only`));
  signal.addEventListener('abort', () => wake?.(), { once: true });
  ctx.log.info('Starting incoming queue processing daemon');
  // The farm's expired leases are requeued by whoever runs, this daemon too.
  const stopReaper = startLeaseReaper(ctx.registry, ctx.log);
  try {
    while (!signal.aborted) {
      if (pending) {
        pending = false;
        ctx.log.debug('Processing queue');
        try {
          const result = await runIncomingPass(ctx, { signal });
          options.onPass?.(result);
          // Jobs still waiting for files get another look soon, not only at the next poll.
          if (result.outcomes.some((o) => o.kind === 'waiting') || result.registryError) setTimeout(poke, 1000).unref();
        } catch (err) {
          ctx.log.error(`incoming pass failed: ${messageOf(err)}`);
          // A registry that is away may be back in a moment: not a whole poll interval.
          if (isTransientRegistryError(err)) setTimeout(poke, 1000).unref();
        }
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          pending = true;
          resolve();
        }, options.pollSeconds * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  } finally {
    await stopReaper();
    watcher.close();
    ctx.log.info('Stopping incoming queue processing daemon');
  }
}
