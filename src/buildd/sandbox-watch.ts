import { appendFile, readdir, readFile, readlink } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { formatSize } from '../core/sizes.ts';
import { captureCommand, type RunResult } from '../util/child.ts';
import { processStat } from '../util/process.ts';
import type { BuildLimits } from '../core/limits.ts';
import type { SandboxCommand, SandboxResult } from './sandbox.ts';

/** How often a running build's usage is looked at. */
const LOOK_MS = 1000;
const PAGE = 4096;

/** Messages by which a build shows it ran into a limit: each names the limit it means. */
const SIGNS: { pattern: RegExp; limit: (l: BuildLimits) => string; fatal: boolean }[] = [
  // A fork bomb never ends by itself: seeing fork fail is enough to stop it.
  {
    pattern: /fork: (?:retry: )?Resource temporarily unavailable|Cannot fork|can't fork/i,
    limit: (l) => `its limit of ${l.processes} processes`,
    fatal: true,
  },
  {
    pattern: /Cannot allocate memory|Out of memory|MemoryError|std::bad_alloc|memory exhausted/i,
    limit: (l) => `its memory limit of ${formatSize(l.memory)}`,
    fatal: false,
  },
  {
    pattern: /File size limit exceeded/,
    limit: (l) => `its work directory limit of ${formatSize(l.workdir)}`,
    fatal: false,
  },
  {
    pattern: /No space left on device/,
    limit: (l) => `the space of its /tmp, /var/tmp or /dev/shm (${formatSize(l.tmpfs)} each) or of the disk`,
    fatal: false,
  },
];

type Start = (signal: AbortSignal, output: Writable, onSpawn: (pid: number) => void) => Promise<RunResult>;

/**
 * Runs a sandboxed command and enforces the limits the kernel's rlimits cannot: the total size of
 * its work directory, its number of processes and its resident memory, looked at every second;
 * past one, the build is killed and the result names the limit. `everyMs` changes how often (a
 * builder whose work directory holds a whole unpacked system looks less often). Failures that show a limit's
 * mark in the output (a failed fork or allocation) are attributed to that limit.
 */
export async function watchLimits(
  command: SandboxCommand,
  limits: BuildLimits,
  start: Start,
  everyMs = LOOK_MS,
): Promise<SandboxResult> {
  const stop = new AbortController();
  let limit: string | null = null;
  let hint: string | null = null;
  const exceed = (what: string) => {
    if (limit) return;
    limit = what;
    command.output?.write(`\npkgforge: the build exceeded ${what} and was stopped\n`);
    stop.abort(new Error(`exceeded ${what}`));
  };
  const onOuterAbort = () => stop.abort(command.signal.reason);
  if (command.signal.aborted) onOuterAbort();
  else command.signal.addEventListener('abort', onOuterAbort, { once: true });

  let tail = '';
  const output = new Writable({
    write(chunk: Buffer, _enc, done) {
      command.output?.write(chunk);
      // The last bytes of the previous chunk are kept, so a message split between chunks is seen.
      const text = tail + chunk.toString('latin1');
      tail = text.slice(-80);
      for (const sign of SIGNS) {
        if (!sign.pattern.test(text)) continue;
        if (sign.fatal) exceed(sign.limit(limits));
        else hint ??= sign.limit(limits);
      }
      done();
    },
  });

  let pid: number | null = null;
  let busy = false;
  const writable = command.binds.filter((b) => b.writable).map((b) => b.host);
  const look = async () => {
    if (busy || limit || pid === null) return;
    busy = true;
    try {
      const usage = await processUsage(pid);
      if (usage && usage.processes >= limits.processes) exceed(`its limit of ${limits.processes} processes`);
      else if (usage && usage.resident > limits.memory) exceed(`its memory limit of ${formatSize(limits.memory)}`);
      for (const dir of writable) {
        if ((await directoryBytes(dir)) > limits.workdir)
          exceed(`its work directory limit of ${formatSize(limits.workdir)}`);
      }
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void look(), everyMs);
  try {
    const result = await start(stop.signal, output, (p) => {
      pid = p;
      if (command.processLog) void recordProcess(command.processLog, p);
    });
    const failed = result.code !== 0 || result.error !== undefined;
    // An abort that came from outside (cancel, lost lease) is not a limit.
    return { ...result, aborted: result.aborted && !limit, limit: limit ?? (failed ? hint : null) };
  } finally {
    clearInterval(timer);
    command.signal.removeEventListener('abort', onOuterAbort);
  }
}

/** Appends `<process group> <start time>` (the command leads its own group) to the workspace's process log. */
async function recordProcess(file: string, pid: number): Promise<void> {
  const stat = await processStat(pid);
  if (stat) await appendFile(file, `${stat.pgrp} ${stat.startTime}\n`).catch(() => {});
}

/**
 * The processes and resident bytes of the PID namespace a sandbox made below `pid` (bwrap's first
 * child is that namespace's init), or null when there is none (no sandbox) or it cannot be read.
 */
async function processUsage(pid: number): Promise<{ processes: number; resident: number } | null> {
  try {
    const init = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/)[0];
    if (!init) return null;
    const ns = await readlink(`/proc/${init}/ns/pid`);
    if (ns === (await readlink('/proc/self/ns/pid'))) return null;
    let processes = 0;
    let resident = 0;
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const theirs = await readlink(`/proc/${entry}/ns/pid`).catch(() => null);
      if (theirs !== ns) continue;
      processes++;
      const statm = await readFile(`/proc/${entry}/statm`, 'utf8').catch(() => '');
      resident += Number(statm.split(' ')[1] ?? 0) * PAGE;
    }
    return { processes, resident };
  } catch {
    return null;
  }
}

/** Bytes used under a directory, by `du` (which follows no links and stays on its file system). */
async function directoryBytes(dir: string): Promise<number> {
  const r = await captureCommand('du', ['-s', '-x', '-B1', '--', dir], 60_000);
  return Number(r.stdout.split('\t')[0]) || 0;
}
