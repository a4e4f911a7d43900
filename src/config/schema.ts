import Type, { type Static } from 'typebox';

/**
 * Every configuration key, in one schema: it gives the type, the check and the documentation
 * (docs/configuration.md lists the same keys). Keys are snake_case, as in the original's YAML files.
 */
const RegistryMapping = Type.Object({
  /** `postgresql` (default when `name` is given) or `sqlite`. */
  type: Type.Optional(Type.Union([Type.Literal('postgresql'), Type.Literal('sqlite')])),
  /** PostgreSQL database name, or the SQLite file. */
  name: Type.Optional(Type.String()),
  path: Type.Optional(Type.String()),
  host: Type.Optional(Type.String()),
  port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
  user: Type.Optional(Type.String()),
  pass: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});
export type RegistryMapping = Static<typeof RegistryMapping>;

const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*[KMGTkmgt]?(i?B)?$';
const Size = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: SIZE_PATTERN })]);
/** Free space to keep: a size, or a percentage of the file system (`5%`). */
const Reserve = Type.Union([
  Type.Integer({ minimum: 0 }),
  Type.String({ pattern: SIZE_PATTERN }),
  Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?\\s*%$' }),
]);
const Limits = Type.Object(
  {
    /** Memory of a build (bytes, or 8G). */
    memory: Type.Optional(Size),
    /** Processes (and threads) a build may have at once. */
    processes: Type.Optional(Type.Integer({ minimum: 16 })),
    /** Size of the build's work directory. */
    workdir: Type.Optional(Size),
    /** Size of each of the build's private /tmp, /var/tmp and /dev/shm. */
    tmpfs: Type.Optional(Size),
    /** Size of one product (a built package) taken from the build. */
    product: Type.Optional(Size),
  },
  { additionalProperties: false },
);

const List = Type.Union([Type.String(), Type.Array(Type.String()), Type.Null()]);
/** A phase command: a name, or a one-key mapping of the name to its parameters. */
const CommandSpec = Type.Union([
  Type.String({ minLength: 1 }),
  Type.Record(Type.String(), Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()])),
]);
const CommandList = Type.Union([Type.Array(CommandSpec), CommandSpec, Type.Null()]);

export const ConfigSchema = Type.Object({
  /** The user drop box: one directory per submitted job. */
  incoming: Type.Optional(Type.String({ minLength: 1 })),
  /** Trusted copies of accepted jobs, written by the incoming processor only. */
  accepted: Type.Optional(Type.String({ minLength: 1 })),
  /** Build outputs: results/<job>/<platform>-<arch>/. */
  results: Type.Optional(Type.String({ minLength: 1 })),
  /** Temporary files of the daemons. */
  tmpdir: Type.Optional(Type.String({ minLength: 1 })),
  /** Daemon logs. */
  logdir: Type.Optional(Type.String({ minLength: 1 })),
  /** The registry: `postgresql://…`, `sqlite:PATH`, a SQLite file, a YAML file holding a mapping, or a mapping. */
  registry: Type.Optional(Type.Union([Type.String({ minLength: 1 }), RegistryMapping])),
  /** Base address of the web interface, printed after a submission. */
  website: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  /** Log debug messages. */
  debug: Type.Optional(Type.Boolean()),
  /** Seconds between periodic rescans of a daemon (file-system events wake the incoming daemon sooner). */
  poll: Type.Optional(Type.Number({ minimum: 0.01 })),
  /** Seconds an incomplete job may stay in incoming before it is refused (the grace period). */
  wait_for_job: Type.Optional(Type.Number({ minimum: 0 })),
  /** The platform this host builds for on the embedded default (e.g. `el9`); detected from /etc/os-release when unset. */
  platform: Type.Optional(Type.String()),
  /** submit: where jobs are written (the incoming directory, or one it is mounted as). */
  target: Type.Optional(Type.String({ minLength: 1 })),
  /** submit: the bucket to publish into. */
  bucket: Type.Optional(Type.String()),
  /** submit: platform filters (`auto`, `all`, names, `!name`). */
  platforms: Type.Optional(List),
  /** submit: architecture filters (`all`, names, `!name`). */
  archs: Type.Optional(List),
  /** submit: report e-mail addresses. */
  report: Type.Optional(List),
  /** buildd: the builder command (`rpmbuild` or `mock`), a name or `{name: {param: value}}`. */
  builder: Type.Optional(CommandSpec),
  /** buildd: checks run on the built packages (`rpmlint`). */
  checks: Type.Optional(CommandList),
  /** buildd: signers (`rpmsign`). */
  signers: Type.Optional(CommandList),
  /** buildd: publishers (`createrepo`, `command`); `submitters` is the original's name for them. */
  publishers: Type.Optional(CommandList),
  submitters: Type.Optional(CommandList),
  /** buildd: reports sent when a task ends (`email`, `webhook`). */
  reports: Type.Optional(CommandList),
  /** buildd: seconds one package may build before its build is killed. */
  timeout: Type.Optional(Type.Number({ minimum: 1 })),
  /** buildd: `retry` (failed packages are retried after the others while progress is made) or `immediate`. */
  error_policy: Type.Optional(Type.Union([Type.Literal('retry'), Type.Literal('immediate')])),
  /** buildd: seconds between heartbeats that renew a build's lease. */
  lease_renewal: Type.Optional(Type.Number({ minimum: 0.05 })),
  /** buildd: seconds after the last heartbeat at which a build's lease expires and its task is requeued. */
  lease_expiry: Type.Optional(Type.Number({ minimum: 0.1 })),
  /** buildd: seconds a stopping daemon lets the build in hand finish before aborting it (0: wait for it). */
  stop_grace: Type.Optional(Type.Number({ minimum: 0 })),
  /** submit and incoming: the largest source package a job may carry (bytes, or with K, M, G, T; default 8G). */
  max_package_size: Type.Optional(Size),
  /** submit and incoming: the largest total size of a job's packages (default 16G). */
  max_job_size: Type.Optional(Size),
  /** incoming: free space kept in the accepted file system; a copy that would eat into it waits (default 1G; or a percentage, `5%`). */
  accepted_reserve: Type.Optional(Reserve),
  /** web: the largest source package an HTTP upload may carry, in bytes (default 2 GiB). */
  upload_max_bytes: Type.Optional(Type.Integer({ minimum: 1 })),
  /** web and `repo show`: where users reach the farm's web server (`https://farm.example.org`), for the repositories' addresses (default: the address a request was made to). */
  public_url: Type.Optional(Type.String({ pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$', maxLength: 500 })),
  /** web: reading the API needs a token too (default: only writing does). */
  read_requires_token: Type.Optional(Type.Boolean()),
  /** web: seconds within which a request's line and headers must arrive. */
  headers_timeout: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** web: seconds within which a whole request, body included, must arrive (0: no limit). */
  request_timeout: Type.Optional(Type.Number({ minimum: 0 })),
  /** web: seconds a connection with a request in progress may pass without a byte either way (0: no limit). */
  idle_timeout: Type.Optional(Type.Number({ minimum: 0 })),
  /** web: seconds an idle keep-alive connection is kept open for the client's next request. */
  keep_alive_timeout: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** web: the slowest a request body may arrive, in bytes per second averaged over upload_rate_window (0: no limit). */
  upload_min_rate: Type.Optional(Type.Union([Type.Literal(0), Size])),
  /** web: seconds over which upload_min_rate is averaged. */
  upload_rate_window: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** web: connections one client address may have open at once (0: no limit). */
  max_connections_per_client: Type.Optional(Type.Integer({ minimum: 0 })),
  /** submit --server: the API token to send. */
  token: Type.Optional(Type.String()),
  /** buildd --server: the builder token (`pkgforge token create --builder NAME`). */
  builder_token: Type.Optional(Type.String({ minLength: 1 })),
  /** buildd: `bwrap` (the default: every build in a bubblewrap sandbox) or `none` (builds run as the daemon, with a warning). */
  sandbox: Type.Optional(Type.Union([Type.Literal('bwrap'), Type.Literal('none')])),
  /** buildd: the unprivileged user builds run as when the daemon runs as root (default `pkgforge-build` if it exists, else `nobody`). */
  sandbox_user: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * buildd: where sandboxed builds get their work directories (default: tmpdir, or
   * /var/tmp/pkgforge-builds when the build user cannot reach tmpdir).
   */
  sandbox_dir: Type.Optional(Type.String({ minLength: 1 })),
  /** buildd: what one build may use; sizes as bytes or with K, M, G, T. */
  limits: Type.Optional(Limits),
  /** buildd: limits for one platform, by platform name, over `limits`. */
  platform_limits: Type.Optional(Type.Record(Type.String(), Limits)),
  /** buildd: where published repositories live (yum: repos/<bucket>/<platform>/<arch>/; APT: repos/<bucket>/deb/). */
  repos: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * incoming: keyrings (OpenPGP, binary, as `gpg --export` writes them) by bucket, `'*'` for every
   * other bucket: a .dsc job into such a bucket must be signed by one of the keyring's keys.
   */
  dsc_keyrings: Type.Optional(Type.Record(Type.String(), Type.String({ minLength: 1 }))),
  /** incoming: the buckets this farm accepts jobs into; unset, any. A job naming another is invalid. */
  buckets: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  /** buildd and `pkgforge buildroot`: where Debian platforms' build roots are kept (default: buildroots/ in the data directory). */
  buildroots: Type.Optional(Type.String({ minLength: 1 })),
  /**
   * `pkgforge buildroot`: the Debian mirror build roots are made from, which sbuild then installs
   * build dependencies from (default: this host's apt mirror).
   */
  debian_mirror: Type.Optional(Type.String({ pattern: '^(https?|file)://\\S+$' })),
  /** buildd: the GnuPG home holding the farm's signing key (default: gnupg/ in the data directory). */
  gnupg_home: Type.Optional(Type.String({ minLength: 1 })),
  /** buildd: the key repositories are signed with (a name or fingerprint in gnupg_home); unset: the farm's own, made on first use. */
  signing_key: Type.Optional(Type.String({ minLength: 1 })),
});
export type ConfigFile = Static<typeof ConfigSchema>;

type EnvKind = 'string' | 'number' | 'boolean';

/** How an environment variable's string is read for a key of this schema, or null when no scalar fits it. */
function envKind(schema: { type?: unknown; const?: unknown; anyOf?: unknown[] }): EnvKind | null {
  if (Array.isArray(schema.anyOf)) {
    const kinds = schema.anyOf.map((s) => envKind(s as typeof schema)).filter((k): k is EnvKind => k !== null);
    return kinds.includes('string') ? 'string' : (kinds[0] ?? null);
  }
  if (schema.type === 'boolean') return 'boolean';
  if (schema.type === 'number' || schema.type === 'integer' || typeof schema.const === 'number') return 'number';
  if (schema.type === 'string' || typeof schema.const === 'string') return 'string';
  return null;
}

/**
 * The keys an environment variable PKGFORGE_<KEY> may set, with how to read the string: every key
 * of the schema that takes a scalar, derived from it (a new key is settable without restating it).
 */
export const ENV_KEYS: Readonly<Record<string, EnvKind>> = Object.freeze(
  Object.fromEntries(
    Object.entries(ConfigSchema.properties)
      .map(([key, schema]) => [key, envKind(schema as Parameters<typeof envKind>[0])] as const)
      .filter((entry): entry is readonly [string, EnvKind] => entry[1] !== null),
  ),
);

/** Defaults, in one place. */
