import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
// typebox/schema checks JSON schemas without the whole Value toolkit (half the start-up cost).
import Schema from 'typebox/schema';
import YAML from 'yaml';
import {
  DEFAULT_ACCEPTED_RESERVE,
  DEFAULT_SUBMISSION_LIMITS,
  parseReserve,
  type SpaceReserve,
  type SubmissionLimits,
} from '../core/limits.ts';
import { parseSize } from '../core/sizes.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { DEFAULTS } from './defaults.ts';
import { ConfigSchema, ENV_KEYS, type ConfigFile, type RegistryMapping } from './schema.ts';

/** Where PkgForge keeps its files: the embedded default (one data directory) or a system install. */
export interface Layout {
  /** The data directory of the embedded default, or null for a system install under /etc/pkgforge. */
  home: string | null;
  /** Where the YAML config files are. */
  configDir: string;
}

export type { RegistryConfig } from '../registry/registry-config.ts';
import type { RegistryConfig } from '../registry/registry-config.ts';

/** The web server's limits, resolved: milliseconds, bytes per second; 0 turns a limit off. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  keepAliveTimeoutMs: number;
  uploadMinRate: number;
  uploadRateWindowMs: number;
  maxConnectionsPerClient: number;
}

/** The whole configuration of one command, every value resolved. */
export interface Config {
  layout: Layout;
  /** The config files that were read, in order. */
  files: string[];
  incoming: string;
  accepted: string;
  results: string;
  tmpdir: string;
  logdir: string;
  registry: RegistryConfig;
  website: string | null;
  debug: boolean;
  poll: number;
  waitForJob: number;
  platform: string | null;
  /** Published repositories: repos/<bucket>/<platform>/<arch>/. */
  repos: string;
  /** The web server's timeouts, minimum upload rate and connections per client. */
  http: HttpLimits;
  /** `max_package_size`, `max_job_size`: what `submit` and the incoming processor accept. */
  submissionLimits: SubmissionLimits;
  /** `accepted_reserve`: free space the incoming processor leaves in the accepted file system. */
  acceptedReserve: SpaceReserve;
  /** The raw merged values, for the keys only some commands use (submit's bucket, platforms …). */
  values: ConfigFile;
}

export interface LoadConfigOptions {
  /** The command's own config files after pkgforge.yml, e.g. ['submit.yml'] or ['handlers.yml', 'incoming.yml']. */
  files: string[];
  /** Also read ~/.pkgforge/pkgforge.yml and ~/.pkgforge/<files> (the submit client does). */
  userFiles?: boolean;
  /** `--configfile` values: replace the list, or with a leading `+` append to it. */
  configFiles?: string[];
  /** Values from command-line flags; they win over everything. */
  overrides?: Partial<ConfigFile>;
  env?: NodeJS.ProcessEnv;
}

/** The documented default data directory of the embedded default. */
export function defaultHome(env: NodeJS.ProcessEnv = process.env): string {
  const dataHome =
    env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME)
      ? env.XDG_DATA_HOME
      : join(env.HOME ?? homedir(), '.local', 'share');
  return join(dataHome, 'pkgforge');
}

/**
 * The layout: PKGFORGE_HOME chooses the embedded default in that directory; without it, a system
 * install is used when /etc/pkgforge exists, else the embedded default in its default directory.
 */
export function resolveLayout(env: NodeJS.ProcessEnv = process.env): Layout {
  const configOverride = env.PKGFORGE_CONFIG_DIR ? resolve(env.PKGFORGE_CONFIG_DIR) : null;
  if (env.PKGFORGE_HOME) {
    const home = resolve(env.PKGFORGE_HOME);
    return { home, configDir: configOverride ?? join(home, 'etc') };
  }
  if (existsSync('/etc/pkgforge')) return { home: null, configDir: configOverride ?? '/etc/pkgforge' };
  const home = defaultHome(env);
  return { home, configDir: configOverride ?? join(home, 'etc') };
}

export function loadConfig(options: LoadConfigOptions): Config {
  const env = options.env ?? process.env;
  const layout = resolveLayout(env);
  const userDir = join(env.HOME ?? homedir(), '.pkgforge');
  const names = ['pkgforge.yml', ...options.files];
  let files = names.map((n) => join(layout.configDir, n));
  if (options.userFiles) files.push(...names.map((n) => join(userDir, n)));
  // --configfile FILE replaces the default list; --configfile +FILE appends to it (the original's rule).
  const given = options.configFiles ?? [];
  const explicit = given.filter((c) => !c.startsWith('+')).map((c) => resolve(c));
  if (explicit.length > 0) files = explicit;
  files.push(...given.filter((c) => c.startsWith('+')).map((c) => resolve(c.slice(1))));

  const read: string[] = [];
  let merged: Record<string, unknown> = {};
  for (const file of files) {
    const data = readConfigFile(file, explicit.includes(file));
    if (data === undefined) continue;
    read.push(file);
    merged = { ...merged, ...data };
  }
  merged = { ...merged, ...envValues(env) };
  for (const [k, v] of Object.entries(options.overrides ?? {})) if (v !== undefined) merged[k] = v;

  const invalid = (key: string, why: string) =>
    new PkgForgeError(
      ErrorCode.config,
      `Invalid configuration value for '${key}': ${why} (read from ${read.join(', ') || 'defaults'} and the environment)`,
    );
  if (!Schema.Check(ConfigSchema, merged)) {
    const e = Schema.Errors(ConfigSchema, merged)[1][0];
    throw invalid(e?.instancePath.slice(1).replaceAll('/', '.') || 'configuration', e?.message ?? 'invalid');
  }
  const values = merged as ConfigFile;
  const sized = <T>(key: keyof ConfigFile, parse: (v: number | string) => T, fallback: T): T => {
    const v = values[key] as number | string | undefined;
    if (v === undefined) return fallback;
    try {
      return parse(v);
    } catch (err) {
      throw invalid(key, (err as Error).message);
    }
  };
  const base = layout.home ?? '/var/lib/pkgforge';
  const dir = (v: string | undefined, fallback: string) => resolve(v ?? fallback);
  return {
    layout,
    files: read,
    incoming: dir(values.incoming, join(base, 'incoming')),
    accepted: dir(values.accepted, join(base, 'accepted')),
    results: dir(values.results, join(base, 'results')),
    tmpdir: dir(values.tmpdir, layout.home ? join(layout.home, 'tmp') : '/var/tmp/pkgforge'),
    logdir: dir(values.logdir, layout.home ? join(layout.home, 'log') : '/var/log/pkgforge'),
    registry: resolveRegistry(values.registry, layout, base),
    website: values.website ?? null,
    debug: values.debug ?? false,
    poll: values.poll ?? DEFAULTS.poll,
    waitForJob: values.wait_for_job ?? DEFAULTS.waitForJob,
    platform: values.platform ?? null,
    repos: dir(values.repos, join(base, 'repos')),
    http: httpLimits(values),
    submissionLimits: {
      maxPackageSize: sized('max_package_size', parseSize, DEFAULT_SUBMISSION_LIMITS.maxPackageSize),
      maxJobSize: sized('max_job_size', parseSize, DEFAULT_SUBMISSION_LIMITS.maxJobSize),
    },
    acceptedReserve: sized('accepted_reserve', parseReserve, DEFAULT_ACCEPTED_RESERVE),
    values,
  };
}

/** The web server's limits from configuration values, defaults for those not set. */
export function httpLimits(values: ConfigFile): HttpLimits {
  const d = DEFAULTS.http;
  const ms = (seconds: number) => Math.round(seconds * 1000);
  return {
    headersTimeoutMs: ms(values.headers_timeout ?? d.headersTimeout),
    requestTimeoutMs: ms(values.request_timeout ?? d.requestTimeout),
    idleTimeoutMs: ms(values.idle_timeout ?? d.idleTimeout),
    keepAliveTimeoutMs: ms(values.keep_alive_timeout ?? d.keepAliveTimeout),
    uploadMinRate: parseSize(values.upload_min_rate ?? d.uploadMinRate),
    uploadRateWindowMs: ms(values.upload_rate_window ?? d.uploadRateWindow),
    maxConnectionsPerClient: values.max_connections_per_client ?? d.maxConnectionsPerClient,
  };
}

function readConfigFile(file: string, required: boolean): Record<string, unknown> | undefined {
  if (!existsSync(file)) {
    if (required) throw new PkgForgeError(ErrorCode.config, `Cannot find the configuration file '${file}'`);
    return undefined;
  }
  if (!statSync(file).isFile())
    throw new PkgForgeError(ErrorCode.config, `The configuration file '${file}' is not a regular file`);
  let data: unknown;
  try {
    data = YAML.parse(readFileSync(file, 'utf8'), { uniqueKeys: true, maxAliasCount: 100 });
  } catch (err) {
    throw new PkgForgeError(
      ErrorCode.config,
      `An error occurred whilst loading '${file}': ${(err as Error).message.split('\n')[0]}`,
    );
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data))
    throw new PkgForgeError(ErrorCode.config, `The configuration file '${file}' must be a YAML mapping`);
  // Unknown keys are ignored, as the original did (sites keep LCFG hints like `init` or `keytab`).
  const known = Object.keys(ConfigSchema.properties);
  return Object.fromEntries(Object.entries(data).filter(([k]) => known.includes(k)));
}

function envValues(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, kind] of Object.entries(ENV_KEYS)) {
    const raw = env[`PKGFORGE_${key.toUpperCase()}`];
    if (raw === undefined) continue;
    if (kind === 'number') {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n)) {
        throw new PkgForgeError(ErrorCode.config, `PKGFORGE_${key.toUpperCase()}='${raw}' is not a number`);
      }
      out[key] = n;
    } else if (kind === 'boolean') {
      out[key] = /^(1|true|yes|on)$/i.test(raw);
    } else {
      out[key] = raw;
    }
  }
  return out;
}

function resolveRegistry(value: string | RegistryMapping | undefined, layout: Layout, base: string): RegistryConfig {
  if (value === undefined) return { type: 'sqlite', path: join(layout.home ?? base, 'registry.db') };
  if (typeof value === 'string') {
    if (/^postgres(ql)?:\/\//.test(value)) return { type: 'postgresql', connectionString: value };
    if (value.startsWith('sqlite:')) return { type: 'sqlite', path: resolve(value.slice('sqlite:'.length)) };
    if (/\.ya?ml$/.test(value)) {
      const path = isAbsolute(value) ? value : join(layout.configDir, value);
      const data = readConfigFile(path, true);
      return resolveRegistry(
        (data?.registry ?? YAML.parse(readFileSync(path, 'utf8'))) as RegistryMapping,
        layout,
        base,
      );
    }
    return { type: 'sqlite', path: resolve(value) };
  }
  if (value.type === 'sqlite')
    return { type: 'sqlite', path: resolve(value.path ?? value.name ?? join(base, 'registry.db')) };
  return {
    type: 'postgresql',
    ...(value.host !== undefined && { host: value.host }),
    ...(value.port !== undefined && { port: value.port }),
    ...(value.name !== undefined && { database: value.name }),
    ...(value.user !== undefined && { user: value.user }),
    ...(value.pass !== undefined && value.pass !== null && { password: value.pass }),
  };
}

/** The registry, described for messages without its password. */
export function describeRegistry(r: RegistryConfig): string {
  if (r.type === 'sqlite') return `SQLite ${r.path}`;
  if (r.connectionString) return `PostgreSQL ${r.connectionString.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')}`;
  return `PostgreSQL ${r.user ?? ''}@${r.host ?? 'localhost'}:${r.port ?? 5432}/${r.database ?? ''}`;
}
