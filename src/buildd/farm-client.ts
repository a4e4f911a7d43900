/**
 * A remote build daemon's side of the builder API (web/routes/builder-api.ts): everything it asks the
 * farm, over HTTP, with its builder token. Bodies are streamed both ways (sources down, products up);
 * nothing is held in memory but a live log's piece.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RemoteFile, RemoteFinishAnswer, RemoteReport, RemoteSource } from '../core/remote-build.ts';
import type { Claim, HeartbeatAnswer } from '../registry/attempts.ts';
import { ErrorCode, PkgForgeError, isPkgForgeError, messageOf } from '../util/errors.ts';
import { apiUrl, reach } from '../util/reach.ts';

/** What the farm says of the builder a token acts for (GET /builder). */
export interface FarmBuilder {
  name: string;
  platform: string;
  arch: string;
  family: string;
  active: boolean;
  leaseExpiryMs: number;
  leaseRenewalMs: number;
  productMaxBytes: number;
}

/** A task claimed over HTTP: the claim, the accepted copy's build.yml, and its sources to fetch. */
export interface RemoteClaim {
  claim: Claim;
  manifest: string;
  sources: RemoteSource[];
}

export type HeldClaim = Claim & { host: string | null; leaseLive: boolean };

/**
 * Whether a failure of a farm call may pass if tried again: the farm unreachable, or answering 502,
 * 503 or 504 (a restart, a proxy without its server, a registry outage behind it). A refusal (4xx)
 * will not, nor an internal error (500): retrying that would hold the task for ever.
 */
export function transientFarmError(err: unknown): boolean {
  return err instanceof PkgForgeError && err.code === ErrorCode.unavailable;
}

/** How a refusal's status is said in PkgForge's codes. */
function codeOf(status: number): ErrorCode {
  if (status === 401) return ErrorCode.auth;
  if (status === 403) return ErrorCode.forbidden;
  if (status === 404) return ErrorCode.notFound;
  if (status === 409) return ErrorCode.staleAttempt;
  if (status === 413) return ErrorCode.tooLarge;
  if (status === 502 || status === 503 || status === 504) return ErrorCode.unavailable;
  if (status >= 500) return ErrorCode.internal;
  return ErrorCode.usage;
}

function refusal(status: number, statusText: string, text: string, what: string): PkgForgeError {
  let body: { message?: string; code?: string } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // not JSON: the status says it
  }
  // A 5xx is said by its status (whether to try again), a refusal by the farm's own code.
  const code =
    status < 500 && body.code && (Object.values(ErrorCode) as string[]).includes(body.code)
      ? (body.code as ErrorCode)
      : codeOf(status);
  return new PkgForgeError(code, `The farm refused ${what}: ${body.message ?? `${status} ${statusText}`}`);
}

export class FarmClient {
  constructor(
    readonly server: string,
    private readonly token: string,
  ) {
    apiUrl(server, '/'); // a bad URL is said at once
  }

  private url(path: string) {
    return apiUrl(this.server, `/api/v1${path}`);
  }

  private attemptPath(claim: Claim, rest: string) {
    return `/builder/tasks/${claim.taskId}/attempts/${claim.attempt}/${rest}`;
  }

  /** A JSON request; the answer's body (null for 204). */
  private async call<T>(
    method: string,
    path: string,
    what: string,
    body?: unknown,
    signal?: AbortSignal,
    timeoutMs = 60_000,
  ): Promise<T | null> {
    const timeout = AbortSignal.timeout(timeoutMs);
    const res = await reach(this.url(path), {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    }).catch((err: unknown) => {
      if (err instanceof PkgForgeError) throw err;
      // A timeout or an abort: the farm did not answer in time, or we stopped asking.
      throw new PkgForgeError(ErrorCode.unavailable, `The farm did not answer ${what}: ${messageOf(err)}`, {
        cause: err,
      });
    });
    const text = await res.text().catch(() => '');
    if (res.status === 204) return null;
    if (!res.ok) throw refusal(res.status, res.statusText, text, what);
    return JSON.parse(text) as T;
  }

  async me(): Promise<FarmBuilder> {
    return (await this.call<FarmBuilder>('GET', '/builder', 'to say who this builder is'))!;
  }

  async start(host: string, sandbox: string | null, unable: string | null): Promise<HeldClaim[]> {
    const r = await this.call<{ held: HeldClaim[] }>('POST', '/builder/start', "the builder's start", {
      host,
      sandbox,
      unable,
    });
    return r!.held;
  }

  async stopped(): Promise<void> {
    await this.call('POST', '/builder/stopped', "the builder's stop", {});
  }

  /** The next task, waiting up to `waitSeconds` for one; null when none came. */
  async claim(host: string, waitSeconds: number, signal: AbortSignal): Promise<RemoteClaim | null> {
    return this.call<RemoteClaim>(
      'POST',
      '/builder/claim',
      'a claim',
      { host, wait: waitSeconds },
      signal,
      (waitSeconds + 30) * 1000,
    );
  }

  async heartbeat(claim: Claim, renew: boolean): Promise<HeartbeatAnswer> {
    const r = await this.call<{ answer: HeartbeatAnswer }>(
      'POST',
      this.attemptPath(claim, 'heartbeat'),
      `the heartbeat of ${claim.jobId}`,
      { renew },
      undefined,
      15_000,
    );
    return r!.answer;
  }

  async release(claim: Claim, reason: string): Promise<boolean> {
    const r = await this.call<{ released: boolean }>(
      'POST',
      this.attemptPath(claim, 'release'),
      `the hand-back of ${claim.jobId}`,
      { reason },
    );
    return r!.released;
  }

  /** The finish: the farm checks, signs, publishes and records; it may take as long as publishing does. */
  async finish(claim: Claim, report: RemoteReport): Promise<RemoteFinishAnswer> {
    return (await this.call<RemoteFinishAnswer>(
      'POST',
      this.attemptPath(claim, 'finish'),
      `the report of ${claim.jobId}`,
      report,
      undefined,
      30 * 60_000,
    ))!;
  }

  /**
   * Downloads one source file to `dest` (created, must not exist), hashing it as it arrives; refused
   * unless its size and checksum are the ones the claim gave.
   */
  async download(claim: Claim, source: RemoteSource, dest: string): Promise<void> {
    const what = `the source ${source.file} of ${claim.jobId}`;
    const res = await reach(this.url(this.attemptPath(claim, `sources/${encodeURIComponent(source.file)}`)), {
      headers: { authorization: `Bearer ${this.token}` },
      signal: AbortSignal.timeout(60 * 60_000),
    });
    if (!res.ok || !res.body) throw refusal(res.status, res.statusText, await res.text().catch(() => ''), what);
    const algorithm = source.sha256 ? 'sha256' : 'sha1';
    const hash = createHash(algorithm);
    let size = 0;
    const out = await open(dest, 'wx', 0o644);
    try {
      await pipeline(
        Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
        new Transform({
          transform(chunk: Buffer, _enc, done) {
            size += chunk.length;
            // More than it should be: no reason to take the rest.
            if (size > source.size)
              return done(
                new PkgForgeError(
                  ErrorCode.checksum,
                  `The download of ${what} is not the accepted copy: more than its ${source.size} bytes`,
                ),
              );
            hash.update(chunk);
            done(null, chunk);
          },
        }),
        out.createWriteStream(),
      );
    } catch (err) {
      if (isPkgForgeError(err)) throw err;
      throw new PkgForgeError(ErrorCode.unavailable, `Could not download ${what}: ${messageOf(err)}`, { cause: err });
    }
    const digest = hash.digest('hex');
    const expected = source.sha256 ?? source.sha1;
    if (size !== source.size || digest !== expected)
      throw new PkgForgeError(
        ErrorCode.checksum,
        `The download of ${what} is not the accepted copy: ${size} bytes with ${algorithm} ${digest}, not ${source.size} bytes with ${expected}`,
      );
  }

  /** Sends the log's bytes from `offset`; answers how many bytes the farm now has. */
  async appendLog(claim: Claim, offset: number, piece: Buffer): Promise<number> {
    const res = await reach(this.url(`${this.attemptPath(claim, 'log')}?offset=${offset}`), {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream' },
      body: new Uint8Array(piece),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text().catch(() => '');
    if (!res.ok) throw refusal(res.status, res.statusText, text, `the log of ${claim.jobId}`);
    return (JSON.parse(text) as { size: number }).size;
  }

  /** Uploads one product (streamed, with its length and SHA-256, which the farm checks). */
  async upload(claim: Claim, path: string, file: RemoteFile): Promise<void> {
    const url = new URL(this.url(this.attemptPath(claim, `files/${encodeURIComponent(file.name)}`)));
    const what = `the product ${file.name} of ${claim.jobId}`;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const size = (await stat(path)).size;
    await new Promise<void>((resolve, reject) => {
      // Once the farm has answered, its answer is the outcome, not a broken pipe from what it stopped reading.
      let answered = false;
      const fail = (err: Error) =>
        reject(
          err instanceof PkgForgeError
            ? err
            : new PkgForgeError(ErrorCode.unavailable, `Could not upload ${what} to ${url.origin}: ${messageOf(err)}`, {
                cause: err,
              }),
        );
      const req = request(
        url,
        {
          method: 'PUT',
          headers: {
            authorization: `Bearer ${this.token}`,
            'content-type': 'application/octet-stream',
            'content-length': size,
            'x-pkgforge-sha256': file.sha256,
          },
          timeout: 10 * 60_000,
        },
        (res) => {
          answered = true;
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('error', fail);
          res.on('end', () => {
            if (res.statusCode === 201) return resolve();
            fail(refusal(res.statusCode ?? 0, res.statusMessage ?? '', text, what));
            // Refused: the rest of the file is not sent.
            req.destroy();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 minutes')));
      req.on('error', (err) => answered || fail(err));
      pipeline(createReadStream(path), req).catch((err: Error) => answered || fail(err));
    });
  }
}

/**
 * Retries a farm call while its failure may pass (transientFarmError), with back-off from 200 ms to
 * 5 s: until `until()` has passed or `signal` is aborted, when the last error is thrown.
 */
export async function withFarmRetry<T>(
  fn: () => Promise<T>,
  options: { until: () => number; signal?: AbortSignal; onRetry?: (err: Error) => void },
): Promise<T> {
  let delay = 200;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!transientFarmError(err) || options.signal?.aborted) throw err;
      const wait = Math.min(delay, options.until() - Date.now());
      if (wait <= 0) throw err;
      options.onRetry?.(err as Error);
      await sleep(wait, undefined, options.signal ? { signal: options.signal } : {}).catch(() => {});
      delay = Math.min(delay * 2, 5000);
    }
  }
}
