import type { Command } from 'commander';
import { userInfo } from 'node:os';
import type { Registry } from '../registry/registry.ts';
import { cancelTasks, retryTasks, type TaskSelector } from '../registry/tasks.ts';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';

interface SteerOptions extends CommonOptions {
  platform?: string;
  arch?: string;
}

/** cancel and retry take the same job id and task selection; only the action differs. */
function steerCommand(
  program: Command,
  name: string,
  description: string,
  run: (
    registry: Registry,
    id: string,
    selector: TaskSelector,
  ) => Promise<{ platform: string; arch: string; wasRunning?: boolean }[]>,
  none: string,
  done: string,
): void {
  program
    .command(name)
    .description(description)
    .argument('<id>', 'the job id')
    .option('-p, --platform <name>', 'only the tasks of this platform')
    .option('-a, --arch <arch>', 'only the tasks of this architecture')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: SteerOptions) => {
      const selector = { ...(opts.platform && { platform: opts.platform }), ...(opts.arch && { arch: opts.arch }) };
      const tasks = await withRegistry(configFor([], opts), (r) => run(r, id, selector));
      if (opts.json) return printJson(tasks);
      if (tasks.length === 0) return console.log(`Job ${id} has ${none}`);
      for (const t of tasks)
        console.log(`${done} ${t.platform}/${t.arch}${t.wasRunning ? ' (its build will be stopped)' : ''}`);
    });
}

export function registerSteerCommands(program: Command): void {
  steerCommand(
    program,
    'cancel',
    "cancel a job's waiting and running tasks (a running build is killed within seconds)",
    (r, id, s) => cancelTasks(r, id, s, userInfo().username),
    'no waiting or running task to cancel',
    'Cancelled',
  );
  steerCommand(
    program,
    'retry',
    "put a job's failed and cancelled tasks back in the queue",
    (r, id, s) => retryTasks(r, id, s),
    'no failed or cancelled task to retry',
    'Requeued',
  );
}
