import type { Command } from 'commander';
import { familyOfBuilder } from '../core/terms.ts';
import { join } from 'node:path';
import { runBuildd } from '../buildd/daemon.ts';
import { describeRegistry } from '../config/load-config.ts';
import { detectHostPlatform } from '../config/host-platform.ts';
import { preflight, runIncomingDaemon } from '../incoming/processor.ts';
import { addBuilder, findBuilder } from '../registry/builders.ts';
import { findPlatform } from '../registry/platforms.ts';
import { makeLog } from '../util/log.ts';
import { builddContext, describeTask, localBuilderName } from './buildd.ts';
import { stopSignals } from './signals.ts';
import { collect, configFor, withRegistry, type CommonOptions } from './context.ts';
import { describeOutcome, incomingContext } from './incoming.ts';
import { initialiseFarm } from '../config/initialise-farm.ts';
import { startWeb } from './web.ts';

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'run the whole farm on this machine: incoming processor and a builder for this host (embedded default: SQLite, local directories)',
    )
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--no-build', 'do not run a build daemon for this host')
    .option('--listen <host:port>', 'where the HTTP API listens', '127.0.0.1:8080')
    .option('--no-web', 'do not serve the HTTP API')
    .option('--debug', 'log debug messages')
    .action(async (opts: CommonOptions & { build: boolean; web: boolean; listen: string }) => {
      const config = configFor(['handlers.yml', 'incoming.yml', 'buildd.yml'], opts);
      // The console is for the person at it; the daemons' log goes to a file in logdir.
      const logFile = join(config.logdir, 'serve.log');
      const log = makeLog({ debug: config.debug, name: 'serve', file: logFile });
      await withRegistry(config, async (registry) => {
        const report = await initialiseFarm(config, registry);
        await preflight(config);
        console.log(
          `PkgForge is running. Data: ${config.layout.home ?? '/var/lib/pkgforge'}; registry: ${describeRegistry(config.registry)}`,
        );
        if (report.hostPlatform) console.log(`Registered this host's platform ${report.hostPlatform} (active, auto)`);
        let builderName: string | null = null;
        if (opts.build) {
          const host = detectHostPlatform(config.platform);
          builderName = localBuilderName(host.name);
          if (
            !(await findBuilder(registry.db, builderName)) &&
            (await findPlatform(registry.db, host.name, host.arch))
          ) {
            await addBuilder(registry.db, builderName, host.name, host.arch);
            console.log(`Registered builder ${builderName} for ${host.name}/${host.arch}`);
          }
        }
        // A port in use ends the farm with that reason: a farm without the API it was asked for
        // would look up to the person who started it and be unreachable to everyone else.
        const web = opts.web ? await startWeb(config, registry, opts.listen, log) : null;
        if (web) console.log(`API: ${web.url}/api/v1 (documentation: ${web.url}/api/docs)`);
        console.log(`Log: ${logFile}`);
        const example = familyOfBuilder(config.buildd.builder.name) === 'deb' ? 'FILE.dsc' : 'FILE.src.rpm';
        console.log(`Submit a job with: pkgforge submit --bucket devel ${example}   (stop with Ctrl-C)`);
        const builddCtx = builderName ? builddContext(config, registry, builderName, log) : null;
        const { stop, abort } = stopSignals(log, builddCtx?.settings.stopGraceSeconds ?? 0);
        await Promise.all([
          runIncomingDaemon(incomingContext(config, registry, log), {
            pollSeconds: config.poll,
            signal: stop.signal,
            onPass: (result) => result.outcomes.forEach((o) => o.kind !== 'waiting' && console.log(describeOutcome(o))),
          }),
          builddCtx
            ? runBuildd(builddCtx, {
                stop: stop.signal,
                abort: abort.signal,
                onTask: (r) => console.log(describeTask(r)),
              }).catch((err: Error) => {
                // Jobs are still taken in and registered; they wait for a builder that can build.
                console.error(`The builder for this host cannot build: ${err.message}`);
                console.error(
                  'Install the tools (Debian: apt-get install rpm createrepo-c rpmlint bubblewrap) and restart; jobs are still accepted meanwhile.',
                );
              })
            : Promise.resolve(),
        ]);
        await web?.close();
        console.log('PkgForge stopped');
      });
    });
}
