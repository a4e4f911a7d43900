import type { Command } from 'commander';
import { access, constants } from 'node:fs/promises';
import { dirname } from 'node:path';
import { assertOwnerOnlyWritable } from '../util/fs-safe.ts';
import { limitsFor, type Config } from '../config/load-config.ts';
import type { Registry } from '../registry/registry.ts';
import { builddSettings } from '../buildd/setup.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { makeLog, type Log } from '../util/log.ts';
import { collect, configFor, withRegistry, type CommonOptions } from './context.ts';

/** `HOST:PORT` (IPv6 as `[::1]:8080`), checked. */
export function parseListen(value: string): { host: string; port: number } {
  const m = value.match(/^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/);
  const port = Number(m?.[3]);
  if (!m || port > 65535)
    throw new PkgForgeError(ErrorCode.usage, `--listen takes HOST:PORT (e.g. 127.0.0.1:8080), not '${value}'`);
  return { host: (m[1] ?? m[2])!, port };
}

/** Starts the HTTP server; returns its address and a function that stops it. */
export async function startWeb(
  config: Config,
  registry: Registry,
  listen: string,
  log: Log = makeLog({ debug: config.debug, name: 'web' }),
): Promise<{ url: string; close: () => Promise<void> }> {
  const { buildApp } = await import('../web/app.ts');
  const { farmSide } = await import('../buildd/farm-side.ts');
  const { host, port } = parseListen(listen);
  // The web server serves what clients trust: it will not run beside an accepted/ or repos/ others may rewrite.
  await assertOwnerOnlyWritable(config.accepted, 'accepted');
  await assertOwnerOnlyWritable(config.repos, 'repositories');
  // Remote builders' reports are checked, signed and published here, with the farm's own settings,
  // by a server that may write what the build daemons write (in a system install, one run as their user).
  const writable = await Promise.all([config.results, config.repos].map(async (d) => ((await canWrite(d)) ? null : d)));
  const unwritable = writable.filter((d) => d !== null);
  const noBuilds =
    unwritable.length > 0
      ? `this server's user cannot write ${unwritable.join(' and ')}; run a \`pkgforge web\` for builders as the build daemons' user (docs/remote-builders.md)`
      : undefined;
  const builds = noBuilds
    ? undefined
    : farmSide({
        registry,
        dirs: { accepted: config.accepted, results: config.results, tmpdir: config.tmpdir, repos: config.repos },
        settings: builddSettings(config),
        log,
        limits: (platform) => limitsFor(config.buildd, platform),
      });
  const app = await buildApp(
    {
      registry,
      accepted: config.accepted,
      results: config.results,
      repos: config.repos,
      incoming: config.incoming,
      uploadMaxBytes: config.web.uploadMaxBytes,
      readRequiresToken: config.web.readRequiresToken,
      publicUrl: config.web.publicUrl,
      healthyWithinMs: config.web.healthyWithinMs,
      limits: config.web.http,
      builds,
      noBuilds,
    },
    { log },
  );
  app.addHook('onClose', async () => builds?.close());
  const url = await app.listen({ host, port }).catch(async (err: NodeJS.ErrnoException) => {
    await app.close();
    throw new PkgForgeError(ErrorCode.usage, `Cannot listen on ${listen}: ${listenProblem(err)}`, { cause: err });
  });
  return { url, close: () => app.close() };
}

/** Whether this process may write `dir`, or make it (a repositories directory no publish has made yet). */
async function canWrite(dir: string): Promise<boolean> {
  for (let d = dir; ; d = dirname(d)) {
    const ok = await access(d, constants.W_OK).then(
      () => true,
      (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? null : false),
    );
    if (ok !== null) return ok;
    if (dirname(d) === d) return false;
  }
}

/** Why a server cannot listen, with what to do about it. */
function listenProblem(err: NodeJS.ErrnoException): string {
  if (err.code === 'EADDRINUSE')
    return 'the port is in use (another farm or program listens there); stop it or choose another with --listen';
  if (err.code === 'EACCES')
    return 'permission denied (ports below 1024 need privileges); choose another with --listen';
  if (err.code === 'EADDRNOTAVAIL') return 'this machine has no such address; choose another with --listen';
  return err.message;
}

export function registerWebCommand(program: Command): void {
  program
    .command('web')
    .description('serve the web pages, the HTTP API and the repositories until SIGTERM')
    .option('--listen <host:port>', 'the address to listen on', '127.0.0.1:8080')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .action(async (opts: CommonOptions & { listen: string }) => {
      // The farm side of remote builds checks, signs and publishes as the build daemons do: their settings too.
      const config = configFor(['handlers.yml', 'buildd.yml', 'web.yml'], opts);
      // The web server may run under a database role that can only read (and write what its write
      // routes need): it checks the schema instead of migrating it.
      await withRegistry(
        config,
        async (registry) => {
          const web = await startWeb(config, registry, opts.listen);
          console.log(`PkgForge API at ${web.url}/api/v1 (documentation: ${web.url}/api/docs)`);
          await new Promise<void>((resolve) => {
            process.once('SIGTERM', resolve);
            process.once('SIGINT', resolve);
          });
          await web.close();
        },
        { checkSchema: true },
      );
    });
}
