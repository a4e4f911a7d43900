import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import type { Writable } from 'node:stream';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Where stdout and stderr go, as they are produced (a task's log). */
  output?: Writable;
  /** Kill the whole process group after this long. */
  timeoutMs?: number;
  /** Kill the whole process group when this aborts (cancel, shutdown). */
  signal?: AbortSignal;
  /** Milliseconds between SIGTERM and SIGKILL (default 2 s, so a cancel takes effect within 5 s). */
  killGraceMs?: number;
  /** Run as this user and group (the caller must be root); supplementary groups are dropped. */
  uid?: number;
  gid?: number;
  /** Called with the child's pid once it is running (a sandbox's watcher finds its processes from it). */
  onSpawn?: (pid: number) => void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  aborted: boolean;
  /** The first error spawning the command (e.g. it does not exist). */
  error?: Error;
}

/**
 * Runs a command in its own process group, its output streamed to `output` as it comes. A timeout
 * or an abort kills the whole group (rpmbuild's children included): SIGTERM, then SIGKILL.
 */
export function runCommand(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid !== undefined && { uid: options.uid }),
      ...(options.gid !== undefined && { gid: options.gid }),
    });
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = () => {
      // No check that the child is still running: its group may hold members (a backgrounded
      // `sleep 600 &`) after it exited, and they are what keeps the build alive.
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }, options.killGraceMs ?? 2000);
    };
    const timer = options.timeoutMs ? setTimeout(() => ((timedOut = true), killGroup()), options.timeoutMs) : undefined;
    const onAbort = () => ((aborted = true), killGroup());
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk: Buffer) => options.output?.write(chunk));
    }
    let error: Error | undefined;
    child.on('error', (err) => (error = err));
    child.on('exit', () => {
      // Once the command itself has ended, whatever it left in its group goes too, and we stop
      // waiting for pipes a leftover process may still hold open.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // none left
        }
      }
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 200).unref();
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
      // The group may still have members (a daemonised grandchild): make sure nothing outlives the build.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // none left
        }
      }
      resolve({ code, signal, timedOut, aborted, ...(error && { error }) });
    });
  });
}

/** Runs a command and returns its standard output (for short queries such as `rpm -q`). */
export async function captureCommand(
  command: string,
  args: readonly string[],
  timeoutMs = 30_000,
): Promise<{ code: number | null; stdout: string }> {
  const chunks: Buffer[] = [];
  const { Writable } = await import('node:stream');
  const sink = new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) });
  const r = await runCommand(command, args, { output: sink, timeoutMs });
  return { code: r.error ? null : r.code, stdout: Buffer.concat(chunks).toString('utf8') };
}

/** The full path of an executable found on PATH (or the path itself when absolute), or null. */
export async function findExecutable(tool: string): Promise<string | null> {
  const candidates = isAbsolute(tool)
    ? [tool]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, tool));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      return c;
    } catch {
      // next
    }
  }
  return null;
}
