/**
 * Errors a person can act on: a stable code, what failed, on which job or file, and why.
 * The codes are listed in docs/errors.md; test/util/errors.test.ts keeps the two in step.
 */
export const ErrorCode = {
  /** build.yml cannot be read, parsed or does not follow the schema. */
  manifest: 'PKGF_ERR_MANIFEST',
  /** A job id that is malformed, too long or already used. */
  jobId: 'PKGF_ERR_JOB_ID',
  /** A source package that is not what it claims to be (not an RPM, not a source RPM, no spec file). */
  sourcePackage: 'PKGF_ERR_SOURCE_PACKAGE',
  /** A checksum or size that does not match the manifest. */
  checksum: 'PKGF_ERR_CHECKSUM',
  /** A file name or path that is unsafe (a path, `..`, a NUL byte, a link). */
  unsafePath: 'PKGF_ERR_UNSAFE_PATH',
  /** Configuration that cannot be read or is invalid. */
  config: 'PKGF_ERR_CONFIG',
  /** The registry (database) refused or failed an operation. */
  registry: 'PKGF_ERR_REGISTRY',
  /** A registry object that does not exist (job, platform, builder). */
  notFound: 'PKGF_ERR_NOT_FOUND',
  /** A registry object that already exists. */
  exists: 'PKGF_ERR_EXISTS',
  /** A directory PkgForge needs is missing or not writable. */
  directory: 'PKGF_ERR_DIRECTORY',
  /** Copying a job to the accepted directory failed. */
  transfer: 'PKGF_ERR_TRANSFER',
  /** Bad command-line usage or option values. */
  usage: 'PKGF_ERR_USAGE',
  /** Another process holds a lock PkgForge needs. */
  locked: 'PKGF_ERR_LOCKED',
  /** An HTTP request without a valid API token where one is needed. */
  auth: 'PKGF_ERR_AUTH',
  /** A package or job larger than a configured limit (`max_package_size`, `max_job_size`, an upload's `upload_max_bytes`). */
  tooLarge: 'PKGF_ERR_TOO_LARGE',
  /** An HTTP request that did not arrive in time, or whose body arrived too slowly. */
  timeout: 'PKGF_ERR_TIMEOUT',
  /** A client address with more connections open than the server allows. */
  tooManyConnections: 'PKGF_ERR_TOO_MANY_CONNECTIONS',
  /** An unexpected server error (details in the server's log). */
  internal: 'PKGF_ERR_INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

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

/** Anything thrown, as an Error (libraries and callbacks may throw strings). */
export function coerceError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return coerceError(err).message;
}
