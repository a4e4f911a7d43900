import type { Command } from 'commander';
import type { Config } from '../config/load-config.ts';
import { printable } from '../core/names.ts';
import type { EntryOutcome } from '../incoming/process-entry.ts';
import { preflight, runIncomingDaemon, runIncomingPass } from '../incoming/processor.ts';
import type { Registry } from '../registry/registry.ts';
import { makeLog, type Log } from '../util/log.ts';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';
import { stopSignals } from './signals.ts';

export function describeOutcome(o: EntryOutcome): string {
  // Reasons may quote what a submitter wrote (paths in file system errors): printed escaped.
  const reason = 'reason' in o ? printable(o.reason, 2000) : '';
  switch (o.kind) {
    case 'registered':
      return `job ${o.job}: registered with ${o.targets.length} task${o.targets.length === 1 ? '' : 's'}${o.targets.length ? ` (${o.targets.map((t) => `${t.platform}/${t.arch}`).join(', ')})` : ''}`;
    case 'cleaned':
      return `${printable(o.entry)}: removed (${reason})`;
    default:
      return `${o.job ? `job ${o.job}` : printable(o.entry)}: ${o.kind} (${reason})`;
  }
}

/** The incoming processor's context from the configuration. */
export function incomingContext(config: Config, registry: Registry, log: Log) {
  return {
    registry,
    incoming: config.incoming,
    accepted: config.accepted,
    waitForJobMs: config.waitForJob * 1000,
    log,
    limits: config.submissionLimits,
    reserve: config.acceptedReserve,
    dscKeyrings: config.dscKeyrings,
    buckets: config.buckets,
  };
}

export function registerIncomingCommand(program: Command): void {
  program
    .command('incoming')
    .description('process the incoming queue once, or forever with --daemon')
    .option('--daemon', 'run until SIGTERM, waking on file-system events and every poll interval')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the pass result as JSON')
    .option('--debug', 'log debug messages')
    .action(async (opts: CommonOptions & { daemon?: boolean }) => {
      const config = configFor(['handlers.yml', 'incoming.yml'], opts);
      const log = makeLog({ debug: config.debug, name: 'incoming' });
      await preflight(config);
      // The pass in hand is finished on the first signal; a second one exits at once.
      const signals = opts.daemon ? stopSignals(log, 0) : null;
      signals?.abort.signal.addEventListener('abort', () => process.exit(130));
      await withRegistry(
        config,
        async (registry) => {
          const ctx = incomingContext(config, registry, log);
          if (!opts.daemon) {
            const result = await runIncomingPass(ctx);
            if (opts.json) return printJson(result);
            if (!result.ran) return console.log('Another incoming processor is running; nothing done');
            for (const o of result.outcomes) console.log(describeOutcome(o));
            if (result.registryError) {
              process.exitCode = 1;
              console.error(
                `The registry is unavailable; the queue was left for the next pass: ${result.registryError}`,
              );
            }
            return;
          }
          await runIncomingDaemon(ctx, { pollSeconds: config.poll, signal: signals!.stop.signal });
        },
        { migrate: true, ...(signals && { waitUntil: signals.stop.signal, log }) },
      );
    });
}
