import type { Command } from 'commander';
import { hostname } from 'node:os';
import { runBuildd, type TaskReport } from '../buildd/daemon.ts';
import { FarmClient } from '../buildd/farm-client.ts';
import { runRemoteBuildd, type RemoteBuilddContext } from '../buildd/remote-daemon.ts';
import { builddSettings } from '../buildd/setup.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
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

/**
 * A remote daemon's context: its own directories (the data directory of this host), its builder
 * command and sandbox, and none of the farm's checks, signers, publishers or reports (the farm runs
 * those on what it receives).
 */
function remoteContext(config: Config, server: string, name: string, log: Log): RemoteBuilddContext {
  const token = config.buildd.builderToken;
  if (!token)
    throw new PkgForgeError(
      ErrorCode.usage,
      `buildd --server needs builder ${name}'s token: set builder_token in buildd.yml, or PKGFORGE_BUILDER_TOKEN (made with \`pkgforge token create --builder ${name}\` on the farm)`,
    );
  const settings = { ...builddSettings(config), checks: [], signers: [], publishers: [], reports: [] };
  return {
    farm: new FarmClient(server, token),
    name,
    dirs: { accepted: config.accepted, results: config.results, tmpdir: config.tmpdir },
    settings,
    log,
  };
}

export function registerBuilddCommand(program: Command): void {
  program
    .command('buildd')
    .description('build the next task for a builder and exit, or keep building with --daemon')
    .requiredOption('-n, --name <name>', 'the builder (registered with `pkgforge builder add`)')
    .option('--daemon', 'run until SIGTERM (a second signal aborts the build in hand)')
    .option(
      '--server <url>',
      'build for the farm at this URL over its HTTP API, with a builder token (`builder_token`, or PKGFORGE_BUILDER_TOKEN): no database, no shared directories',
    )
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .option('--debug', 'log debug messages')
    .action(async (opts: CommonOptions & { name: string; daemon?: boolean; server?: string }) => {
      const config = configFor(['handlers.yml', 'buildd.yml', `buildd-${opts.name}.yml`], opts);
      const log = makeLog({ debug: config.debug, name: `buildd-${opts.name}` });
      const settings = builddSettings(config);
      const { stop, abort } = stopSignals(log, settings.stopGraceSeconds);
      const loop = {
        once: !opts.daemon,
        stop: stop.signal,
        abort: abort.signal,
        onTask: (r: TaskReport) => !opts.json && console.log(describeTask(r)),
      };
      const done = (reports: TaskReport[]) => {
        if (opts.json) return printJson(reports);
        if (!opts.daemon && reports.length === 0) console.log(`Nothing to build for '${opts.name}'`);
      };
      if (opts.server) return done(await runRemoteBuildd(remoteContext(config, opts.server, opts.name, log), loop));
      await withRegistry(
        config,
        async (registry) => {
          const c = { ...builddContext(config, registry, opts.name, log), settings };
          done(await runBuildd(c, loop));
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
