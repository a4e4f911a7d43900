import type { Command } from 'commander';
import { join } from 'node:path';
import { describeRegistry } from '../config/load-config.ts';
import { preflight, runIncomingDaemon } from '../incoming/processor.ts';
import { makeLog } from '../util/log.ts';
import { collect, configFor, withRegistry, type CommonOptions } from './context.ts';
import { abortOnSignals, describeOutcome, incomingContext } from './incoming.ts';
import { initialiseFarm } from './init.ts';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the whole farm on this machine (embedded default: SQLite registry, local directories)')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--debug', 'log debug messages')
    .action(async (opts: CommonOptions) => {
      const config = configFor(['handlers.yml', 'incoming.yml'], opts);
      // The console is for the person at it; the daemon's log goes to a file in logdir.
      const logFile = join(config.logdir, 'serve.log');
      const log = makeLog({ debug: config.debug, name: 'serve', file: logFile });
      await withRegistry(config, async (registry) => {
        const report = await initialiseFarm(config, registry);
        await preflight(config);
        console.log(`PkgForge is running. Data: ${config.layout.home ?? '/var/lib/pkgforge'}; registry: ${describeRegistry(config.registry)}`);
        if (report.hostPlatform) console.log(`Registered this host's platform ${report.hostPlatform} (active, auto)`);
        console.log(`Log: ${logFile}`);
        console.log('Submit a job with: pkgforge submit --bucket devel FILE.src.rpm   (stop with Ctrl-C)');
        const controller = new AbortController();
        abortOnSignals(controller, log);
        await runIncomingDaemon(incomingContext(config, registry, log), {
          pollSeconds: config.poll,
          signal: controller.signal,
          onPass: (result) => result.outcomes.forEach((o) => o.kind !== 'waiting' && console.log(describeOutcome(o))),
        });
      });
    });
}
