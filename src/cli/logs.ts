import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { followLog } from '../util/follow-log.ts';
import { attemptPath } from '../core/results-layout.ts';
import { getJobDetail } from '../registry/jobs.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { collect, configFor, withRegistry, type CommonOptions } from './context.ts';

export function registerLogsCommand(program: Command): void {
  program
    .command('logs')
    .description("print a task's build log (the latest attempt); --follow keeps printing while it builds")
    .argument('<id>', 'the job id')
    .option('-p, --platform <name>', 'the platform (needed when the job has several tasks)')
    .option('-a, --arch <arch>', 'the architecture')
    .option('--attempt <n>', 'an earlier attempt')
    .option('-f, --follow', 'keep printing as the log grows, until the attempt ends')
    .option('--server <url>', 'follow the log from a PkgForge server (needs --platform and --arch)')
    .option('--token <token>', 'the API token, when the server needs one for reading')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .action(
      async (
        id: string,
        opts: CommonOptions & {
          platform?: string;
          arch?: string;
          attempt?: string;
          follow?: boolean;
          server?: string;
          token?: string;
        },
      ) => {
        const config = configFor([], opts);
        if (opts.server) {
          if (!opts.platform || !opts.arch)
            throw new PkgForgeError(ErrorCode.usage, 'With --server, name the task with --platform and --arch');
          const { followRemoteLog } = await import('../web/client.ts');
          return followRemoteLog(
            opts.server,
            opts.token ?? config.client.token ?? undefined,
            id,
            opts.platform,
            opts.arch,
            process.stdout,
          );
        }
        await withRegistry(config, async ({ db }) => {
          const findTask = async () => {
            const job = await getJobDetail(db, id);
            if (!job) throw new PkgForgeError(ErrorCode.notFound, `There is no job ${id}`);
            const tasks = job.tasks.filter(
              (t) => (!opts.platform || t.platform === opts.platform) && (!opts.arch || t.arch === opts.arch),
            );
            if (tasks.length !== 1) {
              throw new PkgForgeError(
                ErrorCode.usage,
                tasks.length === 0
                  ? `Job ${id} has no such task`
                  : `Job ${id} has ${tasks.length} tasks; choose one with --platform and --arch (${tasks.map((t) => `${t.platform}/${t.arch}`).join(', ')})`,
              );
            }
            return tasks[0]!;
          };
          let task = await findTask();
          // --follow on a task still waiting waits for its first attempt to start.
          while (opts.follow && !opts.attempt && task.attempt === 0 && task.status === 'needs build') {
            await sleep(500);
            task = await findTask();
          }
          const attempt = opts.attempt ? Number(opts.attempt) : task.attempt;
          if (!Number.isInteger(attempt) || attempt < 1)
            throw new PkgForgeError(
              ErrorCode.usage,
              `Task ${task.platform}/${task.arch} of job ${id} has not started building yet`,
            );
          const path = join(config.results, attemptPath(id, task.platform, task.arch, attempt), 'build.log');
          if (!opts.follow && !existsSync(path)) {
            throw new PkgForgeError(
              ErrorCode.notFound,
              `No build log yet for ${task.platform}/${task.arch} attempt ${attempt} of job ${id}`,
            );
          }
          const stillRunning = async () => {
            const now = await findTask();
            return now.attempt === attempt && now.status === 'building';
          };
          for await (const { chunk } of followLog(path, { follow: opts.follow === true, stillRunning }))
            process.stdout.write(chunk);
        });
      },
    );
}
