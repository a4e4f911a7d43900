/**
 * Errors a person can act on: a stable code, what failed, on which job or file, and why. Each code
 * is defined once here with the HTTP status the API answers it with (as Fastify's lib/errors.js
 * does); docs/errors.md lists them, and test/util/errors.test.ts keeps the three in step.
 */
const DEFINITIONS = {
  /** build.yml cannot be read, parsed or does not follow the schema. */
  manifest: { code: 'PKGF_ERR_MANIFEST', status: 400 },
  /** A job id already used (in incoming, accepted or the registry). */
  jobId: { code: 'PKGF_ERR_JOB_ID', status: 409 },
  /** A job id, platform, architecture, builder or user name that breaks its rule. */
  invalidName: { code: 'PKGF_ERR_INVALID_NAME', status: 400 },
  /** A source package that is not what it claims to be (not an RPM, not a source RPM, no spec file). */
  sourcePackage: { code: 'PKGF_ERR_SOURCE_PACKAGE', status: 400 },
  /** A checksum or size that does not match the manifest. */
  checksum: { code: 'PKGF_ERR_CHECKSUM', status: 400 },
  /** A file name or path that is unsafe (a path, `..`, a NUL byte, a link). */
  unsafePath: { code: 'PKGF_ERR_UNSAFE_PATH', status: 400 },
  /** Configuration that cannot be read or is invalid (the server's). */
  config: { code: 'PKGF_ERR_CONFIG', status: 500 },
  /** The registry (database) refused or failed an operation. */
  registry: { code: 'PKGF_ERR_REGISTRY', status: 500 },
  /** A registry object that does not exist (job, platform, builder). */
  notFound: { code: 'PKGF_ERR_NOT_FOUND', status: 404 },
  /** A registry object that already exists. */
  exists: { code: 'PKGF_ERR_EXISTS', status: 409 },
  /** A directory PkgForge needs is missing or not writable (the server's). */
  directory: { code: 'PKGF_ERR_DIRECTORY', status: 500 },
  /** Copying a job to the accepted directory failed. */
  transfer: { code: 'PKGF_ERR_TRANSFER', status: 500 },
  /** Bad command-line usage, option values or request fields. */
  usage: { code: 'PKGF_ERR_USAGE', status: 400 },
  /** Another process holds a lock PkgForge needs. */
  locked: { code: 'PKGF_ERR_LOCKED', status: 409 },
  /** An HTTP request without a valid API token where one is needed. */
  auth: { code: 'PKGF_ERR_AUTH', status: 401 },
  /** A package or job larger than a configured limit (`max_package_size`, `max_job_size`, an upload's `upload_max_bytes`). */
  tooLarge: { code: 'PKGF_ERR_TOO_LARGE', status: 413 },
  /** A builder token used for what is not its builder's: another builder's task, attempt or job. */
  forbidden: { code: 'PKGF_ERR_FORBIDDEN', status: 403 },
  /** A remote builder's report on an attempt that no longer holds its task (its lease expired, the task was cancelled). */
  staleAttempt: { code: 'PKGF_ERR_STALE_ATTEMPT', status: 409 },
  /** An HTTP request that did not arrive in time, or whose body arrived too slowly. */
  timeout: { code: 'PKGF_ERR_TIMEOUT', status: 408 },
  /** A client address with more connections open than the server allows. */
  tooManyConnections: { code: 'PKGF_ERR_TOO_MANY_CONNECTIONS', status: 429 },
  /** The registry is away for a moment (a restart, an outage); the client may try again. */
  unavailable: { code: 'PKGF_ERR_UNAVAILABLE', status: 503 },
  /** A Debian platform's build root that is missing or could not be made (mmdebstrap failed). */
  buildRoot: { code: 'PKGF_ERR_BUILD_ROOT', status: 500 },
  /** An unexpected server error (details in the server's log). */
  internal: { code: 'PKGF_ERR_INTERNAL', status: 500 },
} as const satisfies Record<string, { code: `PKGF_ERR_${string}`; status: number }>;

type Name = keyof typeof DEFINITIONS;
export const ErrorCode = Object.fromEntries(Object.entries(DEFINITIONS).map(([name, d]) => [name, d.code])) as {
  readonly [K in Name]: (typeof DEFINITIONS)[K]['code'];
};
export type ErrorCode = (typeof DEFINITIONS)[Name]['code'];

const STATUS_BY_CODE = new Map<string, number>(Object.values(DEFINITIONS).map((d) => [d.code, d.status]));

/** The HTTP status the API answers an error code with (500 for a code it does not know). */
export function httpStatusOf(code: string): number {
  return STATUS_BY_CODE.get(code) ?? 500;
}

export class PkgForgeError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PkgForgeError';
    this.code = code;
  }
}

export function isPkgForgeError(err: unknown, code?: ErrorCode): err is PkgForgeError {
  return err instanceof PkgForgeError && (code === undefined || err.code === code);
}

/** Anything thrown, as an Error (libraries and callbacks may throw strings), the thrown value kept as its cause. */
export function coerceError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err), { cause: err });
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return coerceError(err).message;
}
