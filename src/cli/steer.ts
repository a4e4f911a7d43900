import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { cancelTasks, retryTasks } from '../registry/tasks.ts';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';

interface SteerOptions extends CommonOptions {
  platform?: string;
  arch?: string;
}

export function registerSteerCommands(program: Command): void {
  program
    .command('cancel')
    .description("cancel a job's waiting and running tasks (a running build is killed within seconds)")
    .argument('<id>', 'the job id')
    .option('-p, --platform <name>', 'only the tasks of this platform')
    .option('-a, --arch <arch>', 'only the tasks of this architecture')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: SteerOptions) => {
      const config = configFor([], opts);
      const done = await withRegistry(config, (r) => cancelTasks(r, id, { ...(opts.platform && { platform: opts.platform }), ...(opts.arch && { arch: opts.arch }) }, userInfo().username));
      if (opts.json) return printJson(done);
      if (done.length === 0) return console.log(`Job ${id} has no waiting or running task to cancel`);
      for (const t of done) console.log(`Cancelled ${t.platform}/${t.arch}${t.wasRunning ? ' (its build will be stopped)' : ''}`);
    });
  program
    .command('retry')
    .description("put a job's failed and cancelled tasks back in the queue")
    .argument('<id>', 'the job id')
    .option('-p, --platform <name>', 'only the tasks of this platform')
    .option('-a, --arch <arch>', 'only the tasks of this architecture')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: SteerOptions) => {
      const config = configFor([], opts);
      const done = await withRegistry(config, (r) => retryTasks(r, id, { ...(opts.platform && { platform: opts.platform }), ...(opts.arch && { arch: opts.arch }) }));
      if (opts.json) return printJson(done);
      if (done.length === 0) return console.log(`Job ${id} has no failed or cancelled task to retry`);
      for (const t of done) console.log(`Requeued ${t.platform}/${t.arch}`);
    });
}
