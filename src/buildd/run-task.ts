import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import YAML from 'yaml';
import { MANIFEST_FILE, parseManifest } from '../core/manifest.ts';
import type { Claim } from '../registry/attempts.ts';
import { messageOf } from '../util/errors.ts';
import { childPath, linkOrCopy, writeFileAtomic } from '../util/fs-safe.ts';
import type { BuilddSettings } from './setup.ts';
import { logLine, PhaseFailure, type BuildInfo, type PhaseCommand, type TaskRun } from './task-run.ts';
import { makeWorkspace, removeWorkspace, type Workspace } from './workspace.ts';

export interface TaskDirs {
  accepted: string;
  results: string;
  tmpdir: string;
  /** Published repositories (checked at start: only their owner may write them). */
  repos?: string;
}

/** Where a task's results and an attempt's logs live, relative to the results directory. */
export function taskResultsPath(jobId: string, platform: string, arch: string): string {
  return join(jobId, `${platform}-${arch}`);
}
export function attemptPath(jobId: string, platform: string, arch: string, attempt: number): string {
  return join(taskResultsPath(jobId, platform, arch), `attempt-${attempt}`);
}

export type BuildResult = { status: 'success' | 'fail'; reason: string | null; run: TaskRun | null } | { status: 'stopped'; reason: string; run: TaskRun | null };

/**
 * Builds one claimed task: build → check → sign → publish, recorded in buildinfo.yml. Returns how
 * it ended; `stopped` when `signal` aborted it (cancel, lost lease, shutdown), in which case the
 * caller decides what the registry hears.
 */
export async function buildTask(claim: Claim, dirs: TaskDirs, settings: BuilddSettings, signal: AbortSignal): Promise<BuildResult> {
  const resultsDir = childPath(dirs.results, claim.jobId);
  const taskDir = join(resultsDir, `${claim.platform}-${claim.arch}`);
  const attemptDir = join(taskDir, `attempt-${claim.attempt}`);
  await mkdir(attemptDir, { recursive: true });
  const log = createWriteStream(join(attemptDir, 'build.log'), { flags: 'a' });
  // A write error (disk full) must not crash the daemon: the build goes on, its log is incomplete.
  log.on('error', () => {});
  const info: BuildInfo = {
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
  let run: TaskRun | null = null;
  let workspace: Workspace | null = null;
  const setup = await settings.sandbox(claim.builderName, claim.platform);
  try {
    if (!setup.sandbox) {
      // The daemon checked this at start; a sandbox that broke since fails the build, never runs it bare.
      const reason = `The build sandbox cannot be used: ${setup.problem}`;
      log.write(`${reason}\n`);
      return { status: 'fail', reason, run: null };
    }
    const acceptedDir = childPath(dirs.accepted, claim.jobId);
    let manifest;
    try {
      manifest = parseManifest(await readFile(join(acceptedDir, MANIFEST_FILE), 'utf8'), `accepted/${claim.jobId}/${MANIFEST_FILE}`);
    } catch (err) {
      // Requeueing would retry for ever (the original did): the task fails with the reason.
      const reason = `The accepted copy of job ${claim.jobId} cannot be read: ${messageOf(err)}`;
      log.write(`${reason}\n`);
      return { status: 'fail', reason, run: null };
    }
    info.sources = manifest.packages.map((p) => ({ file: p.file, type: p.type, size: p.size, sha1sum: p.sha1sum }));
    workspace = await makeWorkspace(setup.workspaces, `${claim.jobId}-${claim.attempt}-`, setup.sandbox, acceptedDir, manifest.packages.map((p) => p.file));
    const sandbox = setup.sandbox;
    run = { claim, manifest, acceptedDir, resultsDir: taskDir, attemptDir, workspace, sandbox, log, signal, timeoutSeconds: settings.timeoutSeconds, errorPolicy: settings.errorPolicy, info };
    logLine(run, `building job ${claim.jobId} for ${claim.platform}/${claim.arch}, attempt ${claim.attempt}, on ${info.hostname} as ${claim.builderName}`);
    logLine(run, sandbox.describe());
    if (sandbox.kind === 'none') logLine(run, 'WARNING: this build is not sandboxed: its scripts can read and change everything the build daemon can');
    const phases: [string, PhaseCommand[]][] = [
      ['build', [settings.builder()]],
      ['check', settings.checks],
      ['sign', settings.signers],
      ['publish', settings.publishers],
    ];
    try {
      for (const [phase, commands] of phases) {
        info.phases.push(phase);
        for (const command of commands) {
          if (signal.aborted) throw new PhaseFailure('stopped');
          if (phase !== 'build') info.phases.push(`${phase}-${command.name}`);
          await command.run(run);
        }
      }
      info.phases.push('end');
      info.completed = true;
      logLine(run, 'finished: success');
      return { status: 'success', reason: null, run };
    } catch (err) {
      if (signal.aborted) {
        const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'stopped');
        logLine(run, `stopped: ${reason}`);
        info.reason = reason;
        return { status: 'stopped', reason, run };
      }
      const reason = err instanceof PhaseFailure ? err.message : `Unexpected error in the ${info.phases.at(-1)} phase: ${messageOf(err)}`;
      logLine(run, `An error occurred during the build process: ${reason}`);
      logLine(run, `Giving up at phase: '${info.phases.at(-1)}'`);
      info.reason = reason;
      return { status: 'fail', reason, run };
    }
  } finally {
    // The log is closed before buildinfo.yml appears, so a reader following the log knows that
    // once buildinfo.yml is there, the log is complete.
    log.end();
    await once(log, 'close').catch(() => {});
    await keepResults(info, run, attemptDir).catch((err) => process.stderr.write(`pkgforge: could not store the results of ${claim.jobId}: ${messageOf(err)}\n`));
    if (workspace && setup.sandbox) await removeWorkspace(workspace, setup.sandbox).catch((err) => process.stderr.write(`pkgforge: could not remove ${workspace!.root}: ${messageOf(err)}\n`));
  }
}

/**
 * Keeps this attempt's products and buildinfo.yml in its own directory. They become the task's
 * current results only once the registry has accepted the attempt's result (promoteAttempt), so
 * an attempt that lost its lease can never overwrite a newer one's.
 */
async function keepResults(info: BuildInfo, run: TaskRun | null, attemptDir: string): Promise<void> {
  const sourceFiles = new Set(run?.manifest.packages.map((p) => p.file) ?? []);
  for (const product of info.products) {
    // A rebuilt source RPM of the same name is the one already kept in accepted/.
    if (sourceFiles.has(basename(product))) continue;
    // Products are the daemon's own checked copies (products.ts), so a link is as good as a copy.
    await linkOrCopy(product, join(attemptDir, basename(product)));
  }
  info.endtime = Math.floor(Date.now() / 1000);
  const text = YAML.stringify({ ...info, completed: info.completed ? 1 : 0, products: info.products.map((p) => basename(p)) }, { sortMapEntries: true });
  await writeFileAtomic(join(attemptDir, 'buildinfo.yml'), text);
}

/**
 * Makes an attempt's products and buildinfo.yml the task's current results (the top of
 * results/<job>/<platform>-<arch>/): the previous attempt's products go, this one's are linked in
 * (copied where links are not possible), buildinfo.yml last.
 */
export async function promoteAttempt(results: string, claim: Claim): Promise<void> {
  const taskDir = join(childPath(results, claim.jobId), `${claim.platform}-${claim.arch}`);
  const attemptDir = join(taskDir, `attempt-${claim.attempt}`);
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
