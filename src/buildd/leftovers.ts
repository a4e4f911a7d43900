import { readdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { messageOf } from '../util/errors.ts';
import type { Log } from '../util/log.ts';
import { listProcesses, processStat } from '../util/process.ts';
import type { Sandbox } from './sandbox.ts';
import { OWNER_FILE, removeWorkspace, workspaceAt } from './workspace.ts';

/**
 * Ends what earlier runs of this builder left behind when they died without cleaning up (kill -9,
 * a power cut): every process their builds started that still runs, and their workspaces. A
 * bubblewrap sandbox dies with its daemon by itself (--die-with-parent); an unsandboxed build's
 * process group does not, so its groups were written down as they started (`.processes`).
 *
 * Only workspaces whose daemon is gone are touched: the owner's pid and start time must no longer
 * name a running process on this host. A process is ended only if it is in a recorded group and
 * started no earlier than that group's leader, so a recycled pid is never hit.
 */
export async function endLeftovers(base: string, sandbox: Sandbox, log: Log): Promise<{ workspaces: number; processes: number }> {
  const entries = await readdir(base).catch(() => [] as string[]);
  let workspaces = 0;
  let processes = 0;
  for (const name of entries) {
    const root = join(base, name);
    const owner = (await readFile(join(root, OWNER_FILE), 'utf8').catch(() => '')).trim();
    if (await sameProcess(owner)) continue;
    const ws = workspaceAt(root);
    const groups = (await readFile(ws.processLog, 'utf8').catch(() => ''))
      .split('\n')
      .map((line) => line.split(' ').map(Number))
      .filter(([g, t]) => Number.isInteger(g) && g! > 1 && Number.isInteger(t)) as [number, number][];
    if (groups.length > 0) {
      for (const p of await listProcesses()) {
        if (!groups.some(([g, t]) => p.pgrp === g && p.startTime >= t)) continue;
        try {
          process.kill(p.pid, 'SIGKILL');
          processes++;
        } catch {
          // gone meanwhile
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
  if (workspaces + processes > 0) log.warn({ workspaces, processes }, `removed ${workspaces} workspace${workspaces === 1 ? '' : 's'} left by an earlier run of this builder and ended ${processes} process${processes === 1 ? '' : 'es'} still running in them`);
  return { workspaces, processes };
}

/** Whether the owner note names a running daemon (same host, pid and start time: a recycled pid is not it). */
async function sameProcess(owner: string): Promise<boolean> {
  const m = owner.match(/^(.*)\[(\d+)\] (\d+)$/);
  if (!m || m[1] !== hostname()) return false;
  const stat = await processStat(Number(m[2]));
  return stat !== null && stat.startTime === Number(m[3]);
}
