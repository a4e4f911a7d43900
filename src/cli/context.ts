import { loadConfig, type Config, type LoadConfigOptions } from '../config/load-config.ts';
import type { OpenRegistryOptions, Registry } from '../registry/registry.ts';

/** Options every command takes. */
export interface CommonOptions {
  configfile?: string[];
  json?: boolean;
  debug?: boolean;
}

export function configFor(files: string[], opts: CommonOptions, extra: Partial<LoadConfigOptions> = {}): Config {
  return loadConfig({ files, configFiles: opts.configfile ?? [], ...extra, overrides: { ...(opts.debug ? { debug: true } : {}), ...extra.overrides } });
}

/** Runs `fn` with an open registry and always closes it. */
export async function withRegistry<T>(config: Config, fn: (registry: Registry) => Promise<T>, options: OpenRegistryOptions = { migrate: true }): Promise<T> {
  // Loaded on first use, so commands that need no registry (submit) start without the database drivers.
  const { openRegistry } = await import('../registry/registry.ts');
  const registry = await openRegistry(config.registry, options);
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
