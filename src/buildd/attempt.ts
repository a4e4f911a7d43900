import { createWriteStream, type WriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import YAML from 'yaml';
import { packageFiles, type Manifest } from '../core/manifest.ts';
import { readAcceptedManifest as readAccepted } from '../sources/accepted-manifest.ts';
import { attemptPath, taskResultsPath } from '../core/results-layout.ts';
import type { Claim } from '../registry/attempts.ts';
import { messageOf } from '../util/errors.ts';
import { childPath, fsyncDir, fsyncFile, linkOrCopy, writeFileAtomic } from '../util/fs-safe.ts';
import type { BuilddSettings } from './setup.ts';
import {
  logLine,
  PhaseFailure,
  type AttemptRun,
  type BuildInfo,
  type PhaseCommand,
  type PublishCommand,
  type TaskRun,
} from './phases.ts';
import { makeWorkspace, removeWorkspace } from './workspace.ts';

export interface TaskDirs {
  accepted: string;
  results: string;
  tmpdir: string;
  /** Published repositories (checked at start: only their owner may write them). */
  repos?: string;
}

/**
 * An attempt whose build has ended: its log still open for publishing's lines, its record, and what
 * publishers and reports need (`run`; null when the build could not even start: no sandbox, an
 * unreadable accepted copy).
 */
export interface EndedAttempt {
  attemptDir: string;
  log: WriteStream;
  info: BuildInfo;
  run: AttemptRun | null;
  closed?: boolean;
}

export type BuildResult = { status: 'success' | 'fail' | 'stopped'; reason: string | null; attempt: EndedAttempt };

/** How a build differs from the daemon's own (the farm's side of a remote build: see farm-side.ts). */
export interface BuildOptions {
  /** The build phase's command, instead of the configured builder. */
  builder?: PhaseCommand;
  /** What the record starts with, over this host's (the remote builder's host and start time). */
  start?: Partial<Pick<BuildInfo, 'hostname' | 'starttime'>>;
  /** The log's first lines, instead of what is built where and how it is confined. */
  intro?: string[];
}

/** The attempt's outcome, kept on disk from the end of its build until the registry recorded it. */
export interface PendingOutcome {
  attempt: number;
  status: 'success' | 'fail';
  reason: string | null;
  /** The publishers ran to the end (a daemon restarted after this does not publish again). */
  published: boolean;
  info: BuildInfo;
}

/** A hidden name: the web server does not serve it. */
const OUTCOME_FILE = '.outcome.yml';

function openLog(attemptDir: string): WriteStream {
  const log = createWriteStream(join(attemptDir, 'build.log'), { flags: 'a' });
  // A write error (disk full) must not crash the daemon: the build goes on, its log is incomplete.
  log.on('error', () => {});
  return log;
}

/**
 * Builds one claimed task: build → check → sign, in a fresh workspace that is removed at the end;
 * the products are kept in the attempt's directory. Returns how the build ended with the attempt
 * still open: publishing comes only after the registry confirmed that this attempt holds the task
 * (see the daemon), and `closeAttempt` ends it. `stopped` when `signal` aborted it (cancel, lost
 * lease, shutdown), in which case the caller decides what the registry hears.
 */
export async function buildTask(
  claim: Claim,
  dirs: TaskDirs,
  settings: BuilddSettings,
  signal: AbortSignal,
  options: BuildOptions = {},
): Promise<BuildResult> {
  const attemptDir = join(dirs.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));
  await mkdir(attemptDir, { recursive: true });
  const log = openLog(attemptDir);
  const info = { ...newBuildInfo(claim), ...options.start };
  const ended = (status: BuildResult['status'], reason: string | null, run: TaskRun | null): BuildResult => {
    info.reason = reason;
    return { status, reason, attempt: { attemptDir, log, info, run } };
  };
  let run: TaskRun | null = null;
  try {
    const opened = await openRun(claim, dirs, settings, { attemptDir, log, info, signal });
    if (typeof opened === 'string') {
      log.write(`${opened}\n`);
      return ended('fail', opened, null);
    }
    run = opened;
    if (options.intro) for (const line of options.intro) logLine(run, line);
    else announce(run);
    const outcome = await runPhases(run, [
      ['build', [options.builder ?? settings.builder()]],
      ['check', settings.checks],
      ['sign', settings.signers],
    ]);
    return ended(outcome.status, outcome.reason, run);
  } finally {
    await keepProducts(info, run, attemptDir).catch((err) =>
      log.write(`pkgforge: could not keep the products of ${claim.jobId}: ${messageOf(err)}\n`),
    );
    if (run)
      await removeWorkspace(run.workspace, run.sandbox).catch((err) =>
        process.stderr.write(`pkgforge: could not remove ${run!.workspace.root}: ${messageOf(err)}\n`),
      );
  }
}

/** The record of an attempt as it starts (buildinfo.yml, the original's fields). */
export function newBuildInfo(claim: Claim): BuildInfo {
  return {
    jobid: claim.jobId,
    builder: claim.builderName,
    hostname: hostname(),
    platform: claim.platform,
    architecture: claim.arch,
    attempt: claim.attempt,
    starttime: Math.floor(Date.now() / 1000),
    endtime: null,
    phases: ['init'],
    sources: [],
    success: [],
    failures: [],
    logs: ['build.log'],
    products: [],
    completed: false,
    reason: null,
  };
}

/**
 * What a build needs before its first command: the sandbox, the accepted copy's manifest, and a
 * workspace holding the sources. Returns why the task fails instead when one cannot be had: a
 * sandbox that broke since the daemon started fails the build (it never runs bare), and an
 * unreadable accepted copy fails it too (requeueing would retry for ever, as the original did).
 */
async function openRun(
  claim: Claim,
  dirs: TaskDirs,
  settings: BuilddSettings,
  attempt: Pick<TaskRun, 'attemptDir' | 'log' | 'info' | 'signal'>,
): Promise<TaskRun | string> {
  const setup = await settings.sandbox(claim.builderName, claim.platform);
  if (!setup.sandbox) return `The build sandbox cannot be used: ${setup.problem}`;
  const acceptedDir = childPath(dirs.accepted, claim.jobId);
  let manifest;
  try {
    manifest = await readAcceptedManifest(acceptedDir, claim.jobId);
  } catch (err) {
    return messageOf(err);
  }
  attempt.info.sources = manifest.packages.map((p) => ({
    file: p.file,
    type: p.type,
    size: p.size,
    sha1sum: p.sha1sum,
  }));
  const workspace = await makeWorkspace(
    setup.workspaces,
    `${claim.jobId}-${claim.attempt}-`,
    setup.sandbox,
    acceptedDir,
    manifest.packages.flatMap((p) => packageFiles(p).map((f) => f.file)),
  );
  return {
    ...attempt,
    claim,
    manifest,
    acceptedDir,
    resultsDir: join(dirs.results, taskResultsPath(claim.jobId, claim.platform, claim.arch)),
    workspace,
    sandbox: setup.sandbox,
    timeoutSeconds: settings.timeoutSeconds,
    errorPolicy: settings.errorPolicy,
  };
}

/** The log's first lines: what is built, where, and how it is confined. */
function announce(run: TaskRun): void {
  const { claim, info, sandbox } = run;
  logLine(
    run,
    `building job ${claim.jobId} for ${claim.platform}/${claim.arch}, attempt ${claim.attempt}, on ${info.hostname} as ${claim.builderName}`,
  );
  logLine(run, sandbox.describe());
  if (sandbox.kind === 'none')
    logLine(
      run,
      'WARNING: this build is not sandboxed: its scripts can read and change everything the build daemon can',
    );
}

type PhaseOutcome = { status: 'success' | 'fail' | 'stopped'; reason: string | null };

/**
 * Runs phases in order, each command in turn, recording them in the record's `phases` (the build
 * phase by its name, the others also per command: `check-rpmlint`). Stops at the first failure, or
 * when the run's signal is aborted.
 */
async function runPhases<R extends AttemptRun>(
  run: R,
  phases: [string, readonly { name: string; run(run: R): Promise<void> }[]][],
): Promise<PhaseOutcome> {
  const { info, signal } = run;
  try {
    for (const [phase, commands] of phases) {
      info.phases.push(phase);
      for (const command of commands) {
        if (signal.aborted) throw new PhaseFailure('stopped');
        if (phase !== 'build') info.phases.push(`${phase}-${command.name}`);
        await command.run(run);
      }
    }
    return { status: 'success', reason: null };
  } catch (err) {
    const at = info.phases.at(-1);
    if (signal.aborted) {
      const reason = abortReason(signal);
      logLine(run, `stopped at phase '${at}': ${reason}`);
      return { status: 'stopped', reason };
    }
    const reason = err instanceof PhaseFailure ? err.message : `Unexpected error in the ${at} phase: ${messageOf(err)}`;
    logLine(run, `An error occurred during the build process: ${reason}`);
    logLine(run, `Giving up at phase: '${at}'`);
    return { status: 'fail', reason };
  }
}

async function readAcceptedManifest(acceptedDir: string, jobId: string): Promise<Manifest> {
  return (await readAccepted(acceptedDir, jobId)).manifest;
}

const abortReason = (signal: AbortSignal) =>
  signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'stopped');

/**
 * Publishes a built attempt (the publish phase). Call only once the registry confirmed the attempt
 * still holds its task; returns how it ended, and marks the record complete on success.
 */
export async function publishAttempt(
  attempt: EndedAttempt,
  publishers: readonly PublishCommand[],
): Promise<{ status: 'success' | 'fail' | 'stopped'; reason: string | null }> {
  const { run, info } = attempt;
  if (!run) {
    const reason = `The accepted copy of job ${info.jobid} cannot be read, so its build cannot be published`;
    attempt.log.write(`${reason}\n`);
    info.reason = reason;
    return { status: 'fail', reason };
  }
  const outcome = await runPhases(run, [['publish', publishers]]);
  if (outcome.status !== 'success') {
    if (outcome.status === 'fail') info.reason = outcome.reason;
    return outcome;
  }
  info.phases.push('end');
  info.completed = true;
  logLine(run, 'finished: success');
  return { status: 'success', reason: null };
}

/**
 * Ends an attempt: its log is closed, then buildinfo.yml written, so a reader following the log
 * knows that once buildinfo.yml is there, the log is complete. Safe to call twice.
 */
export async function closeAttempt(attempt: EndedAttempt): Promise<void> {
  if (attempt.closed) return;
  attempt.closed = true;
  attempt.log.end();
  await once(attempt.log, 'close').catch(() => {});
  const { info } = attempt;
  info.endtime = Math.floor(Date.now() / 1000);
  const text = YAML.stringify(
    { ...info, completed: info.completed ? 1 : 0, products: info.products.map((p) => basename(p)) },
    { sortMapEntries: true },
  );
  await writeFileAtomic(join(attempt.attemptDir, 'buildinfo.yml'), text);
}

/**
 * Keeps this attempt's products in its own directory, and points the record at those copies (the
 * workspace goes next). They become the task's current results only once the registry has
 * accepted the attempt's result (promoteAttempt), so an attempt that lost its lease can never
 * overwrite a newer one's.
 */
async function keepProducts(info: BuildInfo, run: TaskRun | null, attemptDir: string): Promise<void> {
  const sourceFiles = new Set(run?.manifest.packages.map((p) => p.file) ?? []);
  const kept: string[] = [];
  for (const product of info.products) {
    const name = basename(product);
    // A rebuilt source RPM of the same name is the one already kept in accepted/.
    if (sourceFiles.has(name)) {
      kept.push(join(run!.acceptedDir, name));
      continue;
    }
    // Products are the daemon's own checked copies (products.ts), so a link is as good as a copy.
    await linkOrCopy(product, join(attemptDir, name));
    kept.push(join(attemptDir, name));
  }
  info.products = kept;
}

/** Keeps (durably: written, synced, renamed) the outcome of an attempt until the registry has recorded it. */
export async function keepOutcome(
  attempt: EndedAttempt,
  outcome: Omit<PendingOutcome, 'attempt' | 'info'>,
): Promise<void> {
  // What the outcome points at must survive a power cut as surely as the outcome itself.
  if (!outcome.published) for (const product of attempt.info.products) await fsyncFile(product);
  const pending: PendingOutcome = { attempt: attempt.info.attempt, ...outcome, info: attempt.info };
  await writeFileAtomic(join(attempt.attemptDir, OUTCOME_FILE), YAML.stringify(pending), 0o600);
  await fsyncDir(attempt.attemptDir);
}

export async function forgetOutcome(attemptDir: string): Promise<void> {
  await rm(join(attemptDir, OUTCOME_FILE), { force: true });
}

/**
 * The outcome kept for attempt `attempt` of the claim's task (by default the claim's own) and not
 * known to be recorded, if any: unreadable or foreign files count as none.
 */
export async function readPendingOutcome(
  results: string,
  claim: Claim,
  attempt = claim.attempt,
): Promise<PendingOutcome | null> {
  const dir = join(results, attemptPath(claim.jobId, claim.platform, claim.arch, attempt));
  const text = await readFile(join(dir, OUTCOME_FILE), 'utf8').catch(() => null);
  if (text === null) return null;
  let pending: PendingOutcome | null = null;
  try {
    pending = YAML.parse(text) as PendingOutcome;
  } catch {
    return null;
  }
  const ok =
    pending?.attempt === attempt &&
    (pending.status === 'success' || pending.status === 'fail') &&
    Array.isArray(pending.info?.products) &&
    Array.isArray(pending.info?.phases);
  return ok ? pending : null;
}

/** Reopens an attempt whose outcome an earlier run of the daemon kept (to publish, record and report it). */
export async function resumeAttempt(
  claim: Claim,
  dirs: TaskDirs,
  settings: BuilddSettings,
  pending: PendingOutcome,
  signal: AbortSignal,
): Promise<EndedAttempt> {
  const attemptDir = join(dirs.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));
  return reopenAttempt(
    claim,
    dirs,
    settings,
    attemptDir,
    pending.info,
    signal,
    `recording the outcome this attempt had reached and kept, which the registry had not heard: ${pending.status}`,
  );
}

/**
 * An ended attempt opened again by a daemon that did not build it (or no longer has its run): its
 * log for appending, with a line saying why, and what publishers and reports need.
 */
export async function reopenAttempt(
  claim: Claim,
  dirs: TaskDirs,
  settings: BuilddSettings,
  attemptDir: string,
  info: BuildInfo,
  signal: AbortSignal,
  why: string,
): Promise<EndedAttempt> {
  const log = openLog(attemptDir);
  const acceptedDir = childPath(dirs.accepted, claim.jobId);
  const manifest = await readAcceptedManifest(acceptedDir, claim.jobId).catch(() => null);
  const resultsDir = join(dirs.results, taskResultsPath(claim.jobId, claim.platform, claim.arch));
  const run: AttemptRun | null = manifest && {
    claim,
    manifest,
    acceptedDir,
    resultsDir,
    attemptDir,
    log,
    signal,
    timeoutSeconds: settings.timeoutSeconds,
    errorPolicy: settings.errorPolicy,
    info,
  };
  log.write(`[${new Date().toISOString()}] pkgforge: ${why}\n`);
  return { attemptDir, log, info, run };
}

/**
 * A claim of a task whose earlier attempt's build the registry accepted: this attempt builds
 * nothing, it takes that build's kept products (linked into its own directory, so it is whole by
 * itself) to publish and record them. Null when the accepted attempt kept no readable outcome.
 */
export async function adoptAttempt(
  claim: Claim,
  dirs: TaskDirs,
  settings: BuilddSettings,
  accepted: number,
  signal: AbortSignal,
): Promise<{ attempt: EndedAttempt; pending: PendingOutcome } | null> {
  const pending = await readPendingOutcome(dirs.results, claim, accepted);
  if (!pending || pending.status !== 'success') return null;
  const attemptDir = join(dirs.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));
  await mkdir(attemptDir, { recursive: true });
  const products: string[] = [];
  for (const product of pending.info.products) {
    if (dirname(product) !== join(dirs.results, attemptPath(claim.jobId, claim.platform, claim.arch, accepted))) {
      products.push(product);
      continue;
    }
    await linkOrCopy(product, join(attemptDir, basename(product)));
    products.push(join(attemptDir, basename(product)));
  }
  const info: BuildInfo = {
    ...pending.info,
    attempt: claim.attempt,
    builder: claim.builderName,
    hostname: hostname(),
    products,
    starttime: Math.floor(Date.now() / 1000),
  };
  const why = `the registry had accepted the build of attempt ${accepted} before its builder stopped; publishing its products, not building again`;
  return { attempt: await reopenAttempt(claim, dirs, settings, attemptDir, info, signal, why), pending };
}

/**
 * Makes an attempt's products and buildinfo.yml the task's current results (the top of
 * results/<job>/<platform>-<arch>/): the previous attempt's products go, this one's are linked in
 * (copied where links are not possible), buildinfo.yml last.
 */
export async function promoteAttempt(results: string, claim: Claim): Promise<void> {
  const taskDir = join(results, taskResultsPath(claim.jobId, claim.platform, claim.arch));
  const attemptDir = join(results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));
  for (const name of await readdir(taskDir)) {
    if (name.endsWith('.rpm')) await rm(join(taskDir, name), { force: true });
  }
  for (const name of await readdir(attemptDir)) {
    if (!name.endsWith('.rpm')) continue;
    const tmp = join(taskDir, `.${name}.tmp`);
    await linkOrCopy(join(attemptDir, name), tmp);
    await rename(tmp, join(taskDir, name));
  }
  await copyFile(join(attemptDir, 'buildinfo.yml'), join(taskDir, '.buildinfo.yml.tmp'));
  await rename(join(taskDir, '.buildinfo.yml.tmp'), join(taskDir, 'buildinfo.yml'));
}
