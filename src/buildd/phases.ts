import type { WriteStream } from 'node:fs';
import type { Manifest } from '../core/manifest.ts';
import type { Claim } from '../registry/attempts.ts';
import type { Sandbox } from './sandbox.ts';
import type { Workspace } from './workspace.ts';

/**
 * What an attempt knows once its packages are built: enough to publish and report it, also in a
 * daemon started after a crash (rebuilt from the attempt's directory, without a workspace).
 */
export interface AttemptRun {
  claim: Claim;
  manifest: Manifest;
  /** accepted/<job>/: the trusted sources. */
  acceptedDir: string;
  /** results/<job>/<platform>-<arch>/: the latest products and buildinfo.yml. */
  resultsDir: string;
  /** results/<job>/<platform>-<arch>/attempt-<n>/: this attempt's logs, never overwritten by a retry. */
  attemptDir: string;
  /** The build log (build.log in the attempt directory), streamed as the build runs. */
  log: WriteStream;
  /** Aborted when the task is cancelled, its lease is lost, or the daemon must stop now. */
  signal: AbortSignal;
  /** Seconds a package may build. */
  timeoutSeconds: number;
  errorPolicy: 'retry' | 'immediate';
  /** Filled in by the phases. */
  info: BuildInfo;
}

/** What a build of one task knows and accumulates; every phase command reads and extends it. */
export interface TaskRun extends AttemptRun {
  /**
   * Where the build works (its root is the attempt's private scratch directory, removed afterwards),
   * and the sandbox every command that reads the submitter's files runs in.
   */
  workspace: Workspace;
  sandbox: Sandbox;
}

/** buildinfo.yml: the record of one attempt, as the original wrote it plus attempt and reason. */
export interface BuildInfo {
  jobid: string;
  builder: string;
  hostname: string;
  platform: string;
  architecture: string;
  attempt: number;
  starttime: number;
  endtime: number | null;
  phases: string[];
  sources: { file: string; type: string; size: number; sha1sum: string }[];
  success: string[];
  failures: string[];
  /** Log file names, in the attempt directory. */
  logs: string[];
  /** Built files: absolute paths (in the workspace while building, then the attempt directory's copies); base names in buildinfo.yml. */
  products: string[];
  completed: boolean;
  reason: string | null;
}

/** A phase that failed, with a reason a person can read; it fails the task. */
export class PhaseFailure extends Error {
  override name = 'PhaseFailure';
}

/** A command of one phase that works on the build's workspace (builder, check, signer). */
export interface PhaseCommand {
  /** Its name in configuration and in buildinfo's phases (`rpmbuild`, `rpmlint`, …). */
  readonly name: string;
  /** The executables it needs; preflight checks them. */
  readonly tools: readonly string[];
  /**
   * What else stands in the way of building for this platform and arch on this host (a builder's
   * build root, its user's set-up), each in words; the daemon refuses to claim while any remain.
   */
  preflight?(platform: string, arch: string, sandbox: Sandbox): Promise<string[]>;
  run(task: TaskRun): Promise<void>;
}

/**
 * A publisher: runs after the registry confirmed that this attempt holds the task, on the
 * attempt's kept products. It must be idempotent per attempt (a daemon restarted in the middle of
 * publishing publishes the same files again).
 */
export interface PublishCommand {
  readonly name: string;
  readonly tools: readonly string[];
  run(task: AttemptRun): Promise<void>;
}

/** How a task ended, for reports. */
export interface TaskOutcome {
  status: 'success' | 'fail' | 'cancelled';
  reason: string | null;
}

export interface ReportCommand {
  readonly name: string;
  readonly tools: readonly string[];
  report(task: AttemptRun, outcome: TaskOutcome): Promise<void>;
}

/** Writes a line to the task's build log, with a time stamp, as PkgForge's own voice in it. */
export function logLine(task: Pick<AttemptRun, 'log'>, message: string): void {
  task.log.write(`[${new Date().toISOString()}] pkgforge: ${message}\n`);
}
