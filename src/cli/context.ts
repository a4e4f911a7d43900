import { loadConfig, type Config, type LoadConfigOptions } from '../config/load-config.ts';
import type { OpenRegistryOptions, Registry } from '../registry/registry.ts';
import type { Log } from '../util/log.ts';

/** Options every command takes. */
export interface CommonOptions {
  configfile?: string[];
  json?: boolean;
  debug?: boolean;
}

export function configFor(files: string[], opts: CommonOptions, extra: Partial<LoadConfigOptions> = {}): Config {
  return loadConfig({
    files,
    configFiles: opts.configfile ?? [],
    ...extra,
    overrides: { ...(opts.debug ? { debug: true } : {}), ...extra.overrides },
  });
}

/** How `withRegistry` opens the registry: the open options, and for a daemon, waiting for a registry that is away. */
export interface WithRegistryOptions extends OpenRegistryOptions {
  /**
   * Wait (retrying with back-off) while the registry is unreachable, until this aborts; a daemon
   * started during an outage then starts when it is back.
   */
  waitUntil?: AbortSignal;
  log?: Log;
}

/** Runs `fn` with an open registry and always closes it. */
export async function withRegistry<T>(
  config: Config,
  fn: (registry: Registry) => Promise<T>,
  options: WithRegistryOptions = { migrate: true },
): Promise<T> {
  // Loaded on first use, so commands that need no registry (submit) start without the database drivers.
  const [{ openRegistry }, { withRegistryRetry }] = await Promise.all([
    import('../registry/registry.ts'),
    import('../registry/retry.ts'),
  ]);
  const { waitUntil, log, ...open } = options;
  let registry: Registry;
  try {
    registry = waitUntil
      ? await withRegistryRetry(() => openRegistry(config.registry, open), {
          attempts: Infinity,
          maxDelayMs: 1000,
          signal: waitUntil,
          onRetry: (err, n, _ms, kind) =>
            void (n === 1 && log?.warn({ err: err.message }, `registry unavailable (${kind}); waiting for it`)),
        })
      : await openRegistry(config.registry, open);
  } catch (err) {
    // Told to stop while waiting for the registry: a clean stop, not a failure.
    if (waitUntil?.aborted) {
      log?.info('stopped while waiting for the registry');
      // Only daemons wait, and their functions return nothing.
      return undefined as T;
    }
    throw err;
  }
  try {
    return await fn(registry);
  } finally {
    await registry.close();
  }
}

/** Collects a repeatable option's values. */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
