/** Whether a process with this pid exists on this host (EPERM: it exists, owned by someone else). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A process as /proc/<pid>/stat tells it: its group and its start time (clock ticks after boot). */
export interface ProcessStat {
  pid: number;
  pgrp: number;
  startTime: number;
  /** The state letter: R running, S sleeping, Z zombie (dead, not yet reaped), … */
  state: string;
}

/** Parses /proc/<pid>/stat; the command name in parentheses may itself hold spaces and parentheses. */
export function parseProcStat(text: string): ProcessStat | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const pid = Number(text.slice(0, text.indexOf(' ')));
  // After the name: state(3) ppid(4) pgrp(5) … starttime(22); index 0 here is field 3.
  const fields = text.slice(close + 2).split(' ');
  const pgrp = Number(fields[2]);
  const startTime = Number(fields[19]);
  return Number.isInteger(pid) && Number.isInteger(pgrp) && Number.isInteger(startTime)
    ? { pid, pgrp, startTime, state: fields[0] ?? '' }
    : null;
}

export async function processStat(pid: number): Promise<ProcessStat | null> {
  const { readFile } = await import('node:fs/promises');
  return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => ''));
}

/** Every process of this host's PID namespace, as far as /proc can be read. */
export async function listProcesses(): Promise<ProcessStat[]> {
  const { readdir } = await import('node:fs/promises');
  const list: ProcessStat[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await processStat(Number(entry));
    if (stat) list.push(stat);
  }
  return list;
}

/** This boot of the host (start times and pids mean nothing across boots). */
export async function bootId(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
}
