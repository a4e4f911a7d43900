import { readdir, readFile, readlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { messageOf } from '../util/errors.ts';
import type { Log } from '../util/log.ts';
import { bootId, listProcesses, processStat, type ProcessStat } from '../util/process.ts';
import type { Sandbox } from './sandbox.ts';
import { OWNER_FILE, removeWorkspace, workspaceAt } from './workspace.ts';

/**
 * Ends what earlier runs of this builder left behind when they died without cleaning up (kill -9,
 * a crash): every process their unsandboxed builds started that still runs, and their workspaces.
 * A bubblewrap sandbox dies with its daemon by itself (--die-with-parent); an unsandboxed build's
 * process group does not, so its groups were written down as they started (`.processes`).
 *
 * Only workspaces whose daemon is gone are touched (the owner's pid and start time no longer name a
 * running process). A recorded group is ended only on the same boot, and only while its leader is
 * the very process recorded (same pid and start time); once the leader is gone, only members whose
 * working directory is inside the workspace. A pid or group number used again by an unrelated
 * process is never hit.
 */
export async function endLeftovers(
  base: string,
  sandbox: Sandbox,
  log: Log,
): Promise<{ workspaces: number; processes: number }> {
  const entries = await readdir(base).catch(() => [] as string[]);
  let workspaces = 0;
  let processes = 0;
  const killed: ProcessStat[] = [];
  const boot = await bootId();
  for (const name of entries) {
    const root = join(base, name);
    const owner = (await readFile(join(root, OWNER_FILE), 'utf8').catch(() => '')).trim();
    if (await ownerRuns(owner)) continue;
    const ws = workspaceAt(root);
    const groups = owner.split(' ')[2] === boot ? await recordedGroups(ws.processLog) : [];
    if (groups.length > 0) {
      const all = await listProcesses();
      for (const [group, start] of groups) {
        const leader = all.find((p) => p.pid === group);
        if (leader && leader.startTime !== start) continue;
        for (const p of all) {
          if (p.pgrp !== group) continue;
          if (!leader && !(await cwdInside(p.pid, root))) continue;
          try {
            process.kill(p.pid, 'SIGKILL');
            processes++;
            killed.push(p);
          } catch {
            // gone meanwhile
          }
        }
      }
    }
    try {
      await removeWorkspace(ws, sandbox);
      workspaces++;
    } catch (err) {
      log.warn({ dir: root, err: messageOf(err) }, 'could not remove the workspace of an earlier run');
    }
  }
  await endOf(killed);
  if (workspaces + processes > 0)
    log.warn(
      { workspaces, processes },
      `removed ${workspaces} workspace${workspaces === 1 ? '' : 's'} left by an earlier run of this builder and ended ${processes} process${processes === 1 ? '' : 'es'} still running in them`,
    );
  return { workspaces, processes };
}

/** How long a killed process may take to die before the daemon starts anyway. */
const DEATH_WAIT_MS = 5000;

/**
 * Waits until each killed process is gone or a zombie: SIGKILL is delivered at once, but the
 * process still runs until the kernel has torn it down, so "ended" means ended when it is said.
 */
async function endOf(killed: ProcessStat[]): Promise<void> {
  const deadline = Date.now() + DEATH_WAIT_MS;
  for (const p of killed) {
    for (;;) {
      const now = await processStat(p.pid);
      if (!now || now.startTime !== p.startTime || now.state === 'Z' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

async function recordedGroups(file: string): Promise<[number, number][]> {
  return (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .map((line) => line.split(' ').map(Number))
    .filter(([g, t]) => Number.isInteger(g) && g! > 1 && Number.isInteger(t)) as [number, number][];
}

async function cwdInside(pid: number, root: string): Promise<boolean> {
  const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => null);
  return cwd !== null && (cwd === root || cwd.startsWith(`${root}/`));
}

/** Whether the owner note names a running daemon (same host, pid and start time: a recycled pid is not it). */
async function ownerRuns(owner: string): Promise<boolean> {
  const m = owner.match(/^(.*)\[(\d+)\] (\d+)/);
  if (!m || m[1] !== hostname()) return false;
  const stat = await processStat(Number(m[2]));
  return stat !== null && stat.startTime === Number(m[3]);
}
