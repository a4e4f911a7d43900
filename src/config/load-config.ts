import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
// typebox/schema checks JSON schemas without the whole Value toolkit (half the start-up cost).
import Schema from 'typebox/schema';
import YAML from 'yaml';
import {
  DEFAULT_ACCEPTED_RESERVE,
  DEFAULT_BUILD_LIMITS,
  DEFAULT_SUBMISSION_LIMITS,
  parseReserve,
  type BuildLimits,
  type SpaceReserve,
  type SubmissionLimits,
} from '../core/limits.ts';
import { splitList } from '../core/names.ts';
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

/** A phase command as configured: its name (lower case) and its parameters. */
export interface CommandSpec {
  name: string;
  params: Readonly<Record<string, unknown>>;
}

/** What a build daemon reads (buildd.yml, buildd-<name>.yml): its commands, timings and sandbox. */
export interface BuilddConfig {
  builder: CommandSpec;
  checks: readonly CommandSpec[];
  signers: readonly CommandSpec[];
  publishers: readonly CommandSpec[];
  reports: readonly CommandSpec[];
  /** Seconds one package may build. */
  timeoutSeconds: number;
  errorPolicy: 'retry' | 'immediate';
  leaseRenewalMs: number;
  leaseExpiryMs: number;
  /** Seconds a stopping daemon lets the build in hand finish (0: as long as it takes). */
  stopGraceSeconds: number;
  /** `builder_token`: what a remote daemon (`buildd --server`) shows the farm. */
  builderToken: string | null;
  sandbox: 'bwrap' | 'none';
  /** `sandbox_user`, or null for the default. */
  sandboxUser: string | null;
  /** `sandbox_dir`, or null for the default. */
  sandboxDir: string | null;
  /** `limits` over the defaults. */
  limits: Readonly<BuildLimits>;
  /** `platform_limits`, each over `limits`. */
  platformLimits: Readonly<Record<string, Readonly<BuildLimits>>>;
}

/** What one build of `platform` may use: its `platform_limits`, else `limits`. */
export function limitsFor(buildd: BuilddConfig, platform: string): Readonly<BuildLimits> {
  return buildd.platformLimits[platform] ?? buildd.limits;
}

/** What the web server reads (web.yml). */
export interface WebConfig {
  /** The largest source package an upload may carry, in bytes. */
  uploadMaxBytes: number;
  readRequiresToken: boolean;
  /** `public_url` without a trailing slash, or null: the address a request was made to. */
  publicUrl: string | null;
  /** A builder heard from less than this long ago is healthy (the lease expiry). */
  healthyWithinMs: number;
  /** Timeouts, minimum upload rate and connections per client. */
  http: HttpLimits;
}

/** What a client of the farm sends with a submission (submit.yml, ~/.pkgforge/), before its flags. */
export interface ClientConfig {
  /** Where jobs are written: `target`, else the incoming directory. */
  target: string;
  bucket: string | null;
  platforms: readonly string[];
  archs: readonly string[];
  report: readonly string[];
  /** The API token for --server. */
  token: string | null;
}

/** The whole configuration of one command, every value resolved and frozen. */
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
  /** Debian platforms' build roots: `<platform>-<arch>.tar.zst` each. */
  buildroots: string;
  /** `debian_mirror`, or null: the host's apt mirror. */
  debianMirror: string | null;
  /** The farm's signing key: where GnuPG keeps it, and its name (null: the farm's own, made on first use). */
  signing: { gnupgHome: string; key: string | null };
  /** `max_package_size`, `max_job_size`: what `submit` and the incoming processor accept. */
  submissionLimits: SubmissionLimits;
  /** `accepted_reserve`: free space the incoming processor leaves in the accepted file system. */
  acceptedReserve: SpaceReserve;
  /** `dsc_keyrings`: the keyring a bucket's .dsc jobs must be signed by (`'*'`: any other bucket), paths resolved. */
  dscKeyrings: Readonly<Record<string, string>>;
  /** `buckets`: the buckets jobs may go into, or null for any. */
  buckets: readonly string[] | null;
  /** The YAML file the registry's settings (and credentials) were read from, if they were. */
  registryFile: string | null;
  buildd: BuilddConfig;
  web: WebConfig;
  client: ClientConfig;
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

export function loadConfig(options: LoadConfigOptions): Readonly<Config> {
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

  const invalid: Invalid = (key, why) =>
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
  const incoming = dir(values.incoming, join(base, 'incoming'));
  const registryFile =
    typeof values.registry === 'string' && /\.ya?ml$/.test(values.registry)
      ? resolve(layout.configDir, values.registry)
      : null;
  return deepFreeze({
    layout,
    files: read,
    incoming,
    accepted: dir(values.accepted, join(base, 'accepted')),
    results: dir(values.results, join(base, 'results')),
    tmpdir: dir(values.tmpdir, layout.home ? join(layout.home, 'tmp') : '/var/tmp/pkgforge'),
    logdir: dir(values.logdir, layout.home ? join(layout.home, 'log') : '/var/log/pkgforge'),
    registry: resolveRegistry(values.registry, layout, base),
    registryFile,
    website: values.website ?? null,
    debug: values.debug ?? false,
    poll: values.poll ?? DEFAULTS.poll,
    waitForJob: values.wait_for_job ?? DEFAULTS.waitForJob,
    platform: values.platform ?? null,
    repos: dir(values.repos, join(base, 'repos')),
    buildroots: dir(values.buildroots, join(base, 'buildroots')),
    debianMirror: values.debian_mirror ?? null,
    signing: { gnupgHome: dir(values.gnupg_home, join(base, 'gnupg')), key: values.signing_key ?? null },
    submissionLimits: {
      maxPackageSize: sized('max_package_size', parseSize, DEFAULT_SUBMISSION_LIMITS.maxPackageSize),
      maxJobSize: sized('max_job_size', parseSize, DEFAULT_SUBMISSION_LIMITS.maxJobSize),
    },
    acceptedReserve: sized('accepted_reserve', parseReserve, DEFAULT_ACCEPTED_RESERVE),
    buckets: values.buckets ?? null,
    dscKeyrings: Object.fromEntries(
      Object.entries(values.dsc_keyrings ?? {}).map(([bucket, file]) => [bucket, resolve(layout.configDir, file)]),
    ),
    buildd: builddConfig(values, invalid),
    web: {
      uploadMaxBytes: values.upload_max_bytes ?? DEFAULTS.uploadMaxBytes,
      readRequiresToken: values.read_requires_token ?? DEFAULTS.readRequiresToken,
      publicUrl: values.public_url?.replace(/\/+$/, '') ?? null,
      healthyWithinMs: (values.lease_expiry ?? DEFAULTS.leaseExpiry) * 1000,
      http: httpLimits(values),
    },
    client: {
      target: values.target ? resolve(values.target) : incoming,
      bucket: values.bucket ?? null,
      platforms: splitList(values.platforms),
      archs: splitList(values.archs),
      report: splitList(values.report),
      token: values.token ?? null,
    },
  });
}

type Invalid = (key: string, why: string) => PkgForgeError;

/** The build daemon's section: command specs read, sizes parsed, the lease timings checked against each other. */
function builddConfig(values: ConfigFile, invalid: Invalid): BuilddConfig {
  // The schema allows one builder (a name or a mapping); commandSpecs refuses a mapping naming two.
  const [builder] = commandSpecs(values.builder ?? DEFAULTS.builder, 'builder', invalid);
  const leaseRenewal = values.lease_renewal ?? DEFAULTS.leaseRenewal;
  const leaseExpiry = values.lease_expiry ?? DEFAULTS.leaseExpiry;
  if (leaseExpiry <= leaseRenewal)
    throw invalid('lease_expiry', `${leaseExpiry} s must be longer than lease_renewal (${leaseRenewal} s)`);
  const limits = buildLimits(values.limits ?? {}, DEFAULT_BUILD_LIMITS, 'limits', invalid);
  return {
    builder: builder!,
    checks: commandSpecs(values.checks, 'checks', invalid),
    signers: commandSpecs(values.signers, 'signers', invalid),
    publishers: commandSpecs(values.publishers ?? values.submitters ?? DEFAULTS.publishers, 'publishers', invalid),
    reports: commandSpecs(values.reports, 'reports', invalid),
    timeoutSeconds: values.timeout ?? DEFAULTS.timeout,
    errorPolicy: values.error_policy ?? DEFAULTS.errorPolicy,
    leaseRenewalMs: leaseRenewal * 1000,
    leaseExpiryMs: leaseExpiry * 1000,
    stopGraceSeconds: values.stop_grace ?? DEFAULTS.stopGrace,
    builderToken: values.builder_token ?? null,
    sandbox: values.sandbox ?? DEFAULTS.sandbox,
    sandboxUser: values.sandbox_user ?? null,
    sandboxDir: values.sandbox_dir ?? null,
    limits,
    platformLimits: Object.fromEntries(
      Object.entries(values.platform_limits ?? {}).map(([platform, m]) => [
        platform,
        buildLimits(m, limits, `platform_limits.${platform}`, invalid),
      ]),
    ),
  };
}

/** A phase's commands: each a name, or a one-key mapping of the name to its parameters. */
function commandSpecs(value: ConfigFile['checks'], key: string, invalid: Invalid): CommandSpec[] {
  if (value === undefined || value === null) return [];
  return (Array.isArray(value) ? value : [value]).map((v) => {
    if (typeof v === 'string') return { name: v.toLowerCase(), params: {} };
    const entries = Object.entries(v);
    if (entries.length !== 1)
      throw invalid(key, `only one command may be named per entry, found: ${entries.map(([k]) => k).join(', ')}`);
    const [name, params] = entries[0]!;
    return { name: name.toLowerCase(), params: params ?? {} };
  });
}

/** A `limits` mapping's sizes parsed, over the limits it refines. */
function buildLimits(
  m: NonNullable<ConfigFile['limits']>,
  over: Readonly<BuildLimits>,
  key: string,
  invalid: Invalid,
): BuildLimits {
  const size = (name: 'memory' | 'workdir' | 'tmpfs' | 'product') => {
    const v = m[name];
    if (v === undefined) return over[name];
    try {
      return parseSize(v);
    } catch (err) {
      throw invalid(`${key}.${name}`, (err as Error).message);
    }
  };
  return {
    memory: size('memory'),
    processes: m.processes ?? over.processes,
    workdir: size('workdir'),
    tmpfs: size('tmpfs'),
    product: size('product'),
  };
}

/** Freezes a plain value and everything in it: a process's configuration cannot change under it. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
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
