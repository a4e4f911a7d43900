import type { Command } from 'commander';
import { hostname } from 'node:os';
import { runBuildd, type TaskReport } from '../buildd/daemon.ts';
import { builddSettings } from '../buildd/setup.ts';
import type { Config } from '../config/load-config.ts';
import type { Registry } from '../registry/registry.ts';
import { makeLog, type Log } from '../util/log.ts';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';
import { stopSignals } from './signals.ts';

export function describeTask(r: TaskReport): string {
  return `job ${r.jobId} on ${r.platform}/${r.arch} (attempt ${r.attempt}): ${r.status}${r.reason ? ` (${r.reason})` : ''}`;
}

export function builddContext(config: Config, registry: Registry, name: string, log: Log) {
  return {
    registry,
    name,
    dirs: { accepted: config.accepted, results: config.results, tmpdir: config.tmpdir, repos: config.repos },
    settings: builddSettings(config),
    log,
  };
}

export function registerBuilddCommand(program: Command): void {
  program
    .command('buildd')
    .description('build the next task for a builder and exit, or keep building with --daemon')
    .requiredOption('-n, --name <name>', 'the builder (registered with `pkgforge builder add`)')
    .option('--daemon', 'run until SIGTERM (a second signal aborts the build in hand)')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .option('--debug', 'log debug messages')
    .action(async (opts: CommonOptions & { name: string; daemon?: boolean }) => {
      const config = configFor(['handlers.yml', 'buildd.yml', `buildd-${opts.name}.yml`], opts);
      const log = makeLog({ debug: config.debug, name: `buildd-${opts.name}` });
      const settings = builddSettings(config);
      const { stop, abort } = stopSignals(log, settings.stopGraceSeconds);
      await withRegistry(
        config,
        async (registry) => {
          const c = { ...builddContext(config, registry, opts.name, log), settings };
          const reports = await runBuildd(c, {
            once: !opts.daemon,
            stop: stop.signal,
            abort: abort.signal,
            onTask: (r) => !opts.json && console.log(describeTask(r)),
          });
          if (opts.json) return printJson(reports);
          if (!opts.daemon && reports.length === 0) console.log(`Nothing to build for '${opts.name}'`);
        },
        // Two pooled connections at most (a heartbeat beside a phase's query), closed a second after
        // use, and on PostgreSQL the listener's: an idle builder holds one connection, so a farm of
        // many builders fits the server's max_connections (docs/postgresql.md).
        { migrate: true, poolSize: 2, idleTimeoutMs: 1000, ...(opts.daemon && { waitUntil: stop.signal, log }) },
      );
    });
}

/** The builder name `serve` uses for this host. */
export function localBuilderName(platform: string): string {
  return `${hostname()
    .split('.')[0]!
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 30)}_${platform}`.slice(0, 50);
}
