import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Type from 'typebox';
import { printable } from '../../core/names.ts';
import {
  MAX_CLAIM_WAIT_SECONDS,
  RECEIVED_DIR,
  sourcesOf,
  uploadNameProblem,
  type RemoteFinishAnswer,
  type RemoteReport,
} from '../../core/remote-build.ts';
import { attemptPath } from '../../core/results-layout.ts';
import {
  builderIdentity,
  builderStopped,
  claimHeld,
  claimNextTask,
  claimsHeldBy,
  claimStatus,
  finishAttempt,
  heartbeat,
  idleHeartbeat,
  listAttempts,
  releaseClaim,
  type BuilderIdentity,
  type Claim,
} from '../../registry/attempts.ts';
import { builderOfToken } from '../../registry/tokens.ts';
import { readAcceptedManifest } from '../../sources/accepted-manifest.ts';
import { ErrorCode, PkgForgeError } from '../../util/errors.ts';
import { childPath, fsyncFile } from '../../util/fs-safe.ts';
import type { RemoteBuilds, WebContext } from '../context.ts';
import { taskWaiters } from './task-waiters.ts';

type Me = BuilderIdentity & { platform: string; arch: string; family: string; active: boolean };

const staleAttempt = (task: number, attempt: number) =>
  new PkgForgeError(
    ErrorCode.staleAttempt,
    `Attempt ${attempt} of task ${task} no longer holds its task (its lease expired, or it was cancelled or requeued)`,
  );

/** The most files one attempt may upload (a report lists at most as many products). */
const MAX_UPLOADS = 1000;

/** The largest build log a remote attempt may send: a runaway build's, not a real one's. */
const LOG_MAX = 1024 * 1024 * 1024;

/** The largest piece of a live log one request may carry. */
const LOG_CHUNK_MAX = 1024 * 1024;

/** Printable, on one line: what a builder says is shown in lists and terminals. */
const ONE_LINE = '^[^\\u0000-\\u001f\\u007f]+$';
const HostSchema = Type.String({ minLength: 1, maxLength: 255, pattern: ONE_LINE });

const AttemptParams = Type.Object({
  task: Type.Integer({ minimum: 1 }),
  attempt: Type.Integer({ minimum: 1 }),
});
const ClaimSchema = Type.Object({
  taskId: Type.Integer(),
  attempt: Type.Integer(),
  jobRowId: Type.Integer(),
  jobId: Type.String(),
  bucket: Type.String(),
  platform: Type.String(),
  arch: Type.String(),
  builderId: Type.Integer(),
  builderName: Type.String(),
  acceptedAttempt: Type.Union([Type.Integer(), Type.Null()]),
});
const FileSchema = Type.Object({
  name: Type.String({ maxLength: 255 }),
  size: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
});
const ReportSchema = Type.Object({
  status: Type.Union([Type.Literal('success'), Type.Literal('fail')]),
  // Null first: with the string first, Ajv's type coercion turns a null into "".
  reason: Type.Union([Type.Null(), Type.String({ maxLength: 4096 })]),
  hostname: HostSchema,
  starttime: Type.Integer({ minimum: 0, maximum: 1e11 }),
  phases: Type.Array(Type.String({ maxLength: 100 }), { maxItems: 100 }),
  success: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 1000 }),
  failures: Type.Array(Type.String({ maxLength: 255 }), { maxItems: 1000 }),
  products: Type.Array(FileSchema, { maxItems: 1000 }),
});
const Answer = Type.Object({
  answer: Type.Union([Type.Literal('ok'), Type.Literal('cancelled'), Type.Literal('lost')]),
});

/** The builder token of the request, as its builder; 401 without a valid one. */
async function builderOf(ctx: WebContext, req: FastifyRequest): Promise<Me> {
  const header = req.headers.authorization ?? '';
  const id = header.startsWith('Bearer ') ? await builderOfToken(ctx.registry.db, header.slice(7).trim()) : null;
  const me = id === null ? null : await builderIdentity(ctx.registry.db, { id });
  if (!me)
    throw new PkgForgeError(
      ErrorCode.auth,
      'This needs a valid builder token: Authorization: Bearer <token> (pkgforge token create --builder NAME)',
    );
  return me;
}

/** Runs `fn` after every earlier call with the same key has ended: one at a time per attempt. */
function serialised() {
  const tails = new Map<string, Promise<unknown>>();
  return <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const run = (tails.get(key) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => {});
    tails.set(key, tail);
    void tail.then(() => tails.get(key) === tail && tails.delete(key));
    return run;
  };
}

/**
 * The remote builders' API (`pkgforge buildd --server`): every route needs a builder token and acts
 * for that builder only. A builder claims tasks of its own platform (long-polling), reads the accepted
 * sources of the jobs it holds, and reports only on its own current attempts; results of a stale
 * attempt are refused. What needs the farm's keys and repositories is `ctx.builds` (buildd/farm-side.ts).
 */
export function builderApiRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    const builders = new WeakMap<FastifyRequest, Me>();
    app.addHook('onRequest', async (req) => void builders.set(req, await builderOf(ctx, req)));
    const meOf = (req: FastifyRequest) => builders.get(req)!;
    const service = (): RemoteBuilds => {
      if (!ctx.builds)
        throw new PkgForgeError(
          ErrorCode.unavailable,
          `This server does not take remote builds: ${ctx.noBuilds ?? 'it was started without the farm side of builds'}`,
        );
      return ctx.builds;
    };
    // Uploads are streamed to disk as they arrive, never held in memory.
    app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    const waiters = taskWaiters(ctx.registry, app.log);
    app.addHook('onClose', () => waiters.close());
    const oneAtATime = serialised();

    /** The builder's claim of the request's attempt, or `stale` (no longer current); 403 for another builder's. */
    async function ownClaim(req: FastifyRequest, task: number, attempt: number): Promise<Claim | 'stale'> {
      const held = await claimHeld(ctx.registry, meOf(req), task, attempt);
      if (held === 'foreign')
        throw new PkgForgeError(
          ErrorCode.forbidden,
          `Attempt ${attempt} of task ${task} is not builder ${meOf(req).name}'s`,
        );
      return held;
    }
    /** The claim of the request's attempt: 403 for another builder's, 409 for one no longer current. */
    async function heldClaim(req: FastifyRequest, task: number, attempt: number): Promise<Claim> {
      const held = await ownClaim(req, task, attempt);
      if (held === 'stale') throw staleAttempt(task, attempt);
      return held;
    }
    const attemptDir = (claim: Claim) =>
      join(ctx.results, attemptPath(claim.jobId, claim.platform, claim.arch, claim.attempt));
    /** A new attempt's claim: what earlier attempts of the task uploaded before their leases ran out goes. */
    const forgetEarlierUploads = async (claim: Claim) => {
      for (let n = 1; n < claim.attempt; n++)
        await rm(join(ctx.results, attemptPath(claim.jobId, claim.platform, claim.arch, n), RECEIVED_DIR), {
          recursive: true,
          force: true,
        });
    };
    const acceptedManifest = async (claim: Claim) => {
      const dir = childPath(ctx.accepted, claim.jobId);
      return { dir, ...(await readAcceptedManifest(dir, claim.jobId)) };
    };

    app.get(
      '/builder',
      {
        schema: {
          summary: "The builder this token acts for, its platform and the farm's lease settings",
          tags: ['builders'],
          response: {
            200: Type.Object({
              name: Type.String(),
              platform: Type.String(),
              arch: Type.String(),
              family: Type.String(),
              active: Type.Boolean(),
              leaseExpiryMs: Type.Integer(),
              leaseRenewalMs: Type.Integer(),
              productMaxBytes: Type.Integer(),
            }),
          },
        },
      },
      async (req) => {
        const me = meOf(req);
        const s = service();
        return {
          name: me.name,
          platform: me.platform,
          arch: me.arch,
          family: me.family,
          active: me.active,
          leaseExpiryMs: s.leaseExpiryMs,
          leaseRenewalMs: s.leaseRenewalMs,
          productMaxBytes: s.productMaxBytes(me.platform),
        };
      },
    );

    app.post(
      '/builder/start',
      {
        schema: {
          summary:
            "A remote builder's start: its host, sandbox and what its preflight found; answers the tasks it holds from an earlier run",
          tags: ['builders'],
          body: Type.Object({
            host: HostSchema,
            sandbox: Type.Union([Type.Null(), Type.String({ maxLength: 20, pattern: '^[a-z]+$' })]),
            unable: Type.Union([Type.Null(), Type.String({ maxLength: 4096, pattern: ONE_LINE })]),
          }),
          response: {
            200: Type.Object({
              held: Type.Array(
                Type.Object({
                  ...ClaimSchema.properties,
                  host: Type.Union([Type.String(), Type.Null()]),
                  leaseLive: Type.Boolean(),
                }),
              ),
            }),
          },
        },
      },
      async (req) => {
        const me = meOf(req);
        await idleHeartbeat(ctx.registry.db, me.id, req.body.host, req.body.unable, req.body.sandbox);
        const held = await claimsHeldBy(ctx.registry, me);
        return { held };
      },
    );

    app.post(
      '/builder/stopped',
      { schema: { summary: 'A remote builder stopped cleanly', tags: ['builders'] } },
      async (req, reply) => {
        await builderStopped(ctx.registry.db, meOf(req).id);
        return reply.status(204).send();
      },
    );

    app.post(
      '/builder/claim',
      {
        schema: {
          summary:
            "Claim the builder's next task (its platform's oldest waiting one), waiting up to `wait` seconds for one to be registered; 204 when none came",
          tags: ['builders'],
          body: Type.Object({
            host: HostSchema,
            wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_CLAIM_WAIT_SECONDS })),
          }),
          response: {
            204: Type.Null({ description: 'No task came within the wait' }),
            200: Type.Object({
              claim: ClaimSchema,
              manifest: Type.String({ description: "The accepted copy's build.yml" }),
              sources: Type.Array(
                Type.Object({
                  file: Type.String(),
                  size: Type.Integer(),
                  sha256: Type.Union([Type.String(), Type.Null()]),
                  sha1: Type.Union([Type.String(), Type.Null()]),
                }),
              ),
            }),
          },
        },
      },
      async (req, reply) => {
        const me = meOf(req);
        const s = service();
        const deadline = Date.now() + (req.body.wait ?? 0) * 1000;
        // The wait ends when the builder goes away: its next claim would otherwise be answered to no one.
        // (The response's close, not the request's: that one comes as soon as the body has been read.)
        const gone = new AbortController();
        reply.raw.once('close', () => gone.abort());
        // One task at a time per builder: a token cannot hoard its platform's queue. The look and the
        // claim are one step per builder, so claims sent together cannot each pass the look.
        const claimOne = () =>
          oneAtATime(`claim:${me.id}`, async () => {
            const holding = (await claimsHeldBy(ctx.registry, me)).find((c) => c.leaseLive);
            if (holding)
              throw new PkgForgeError(
                ErrorCode.locked,
                `Builder ${me.name} holds attempt ${holding.attempt} of job ${holding.jobId} (task ${holding.taskId}); finish or release it before claiming another`,
              );
            return claimNextTask(ctx.registry, me, req.body.host, s.leaseExpiryMs);
          });
        for (;;) {
          // Listening before looking, so a task registered between the look and the wait still wakes it.
          const wake = waiters.wait(me.platformId);
          try {
            if (gone.signal.aborted) return reply.status(204).send(null);
            const claim = await claimOne();
            if (claim && claim.attempt > 1) await forgetEarlierUploads(claim);
            // Gone while the claim was made: no one would build it.
            if (claim && gone.signal.aborted) {
              await releaseClaim(ctx.registry, claim, 'the builder went away before it was told of the claim');
              return reply.status(204).send(null);
            }
            // A build the registry accepted before its builder stopped is published by the farm, which holds it.
            if (claim && (await s.settle(claim))) continue;
            if (claim) {
              const accepted = await acceptedManifest(claim).catch((err: Error) => err);
              if (!(accepted instanceof Error))
                return { claim, manifest: accepted.text, sources: sourcesOf(accepted.manifest) };
              // The task fails with the reason, as a local daemon's does: handing it back would give it
              // out again at once, for ever. The builder's wait goes on.
              const reason = accepted.message;
              req.log.error({ job: claim.jobId }, reason);
              await finishAttempt(ctx.registry, claim, 'fail', reason, null);
              continue;
            }
            const left = deadline - Date.now();
            if (left <= 0 || gone.signal.aborted) return reply.status(204).send(null);
            // In pieces no longer than the lease renewal: each look records the builder's heartbeat.
            await wake.until(Math.min(left, s.leaseRenewalMs), gone.signal);
          } finally {
            wake.cancel();
          }
        }
      },
    );

    app.post(
      '/builder/tasks/:task/attempts/:attempt/heartbeat',
      {
        schema: {
          summary: "Renew the attempt's lease (`renew`), or only ask whether it should go on",
          tags: ['builders'],
          params: AttemptParams,
          body: Type.Object({ renew: Type.Boolean() }),
          response: { 200: Answer },
        },
      },
      async (req) => {
        const { task, attempt } = req.params;
        const held = await ownClaim(req, task, attempt);
        if (held === 'stale') {
          // Cancelled or lost: the same words as a local daemon's heartbeat.
          const claim = { taskId: task, attempt } as Claim;
          return { answer: await claimStatus(ctx.registry, claim) };
        }
        return { answer: req.body.renew ? await heartbeat(ctx.registry, held, service().leaseExpiryMs) : 'ok' };
      },
    );

    app.get(
      '/builder/tasks/:task/attempts/:attempt/sources/:file',
      {
        schema: {
          summary:
            "Download one file of the accepted sources of the attempt's job (streamed; check its size and checksum)",
          tags: ['builders'],
          params: Type.Object({ ...AttemptParams.properties, file: Type.String({ maxLength: 255 }) }),
        },
      },
      async (req, reply) => {
        const claim = await heldClaim(req, req.params.task, req.params.attempt);
        const { dir, manifest } = await acceptedManifest(claim);
        const source = sourcesOf(manifest).find((s) => s.file === req.params.file);
        if (!source)
          throw new PkgForgeError(
            ErrorCode.notFound,
            `Job ${claim.jobId} has no source file '${printable(req.params.file)}'`,
          );
        const path = join(dir, source.file);
        const st = await stat(path);
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-length', st.size)
          .send(createReadStream(path));
      },
    );

    app.post(
      '/builder/tasks/:task/attempts/:attempt/log',
      {
        schema: {
          summary:
            "Append to the attempt's build log the bytes from `offset` on (what the farm has already is skipped, so a retry is harmless); answers the log's size",
          tags: ['builders'],
          params: AttemptParams,
          querystring: Type.Object({ offset: Type.Integer({ minimum: 0 }) }),
          consumes: ['application/octet-stream'],
          response: { 200: Type.Object({ size: Type.Integer() }) },
        },
      },
      async (req) => {
        const claim = await heldClaim(req, req.params.task, req.params.attempt);
        const chunk = await readChunk(byteStream(req.body), LOG_CHUNK_MAX);
        const dir = attemptDir(claim);
        return oneAtATime(`log:${claim.taskId}:${claim.attempt}`, async () => {
          await mkdir(dir, { recursive: true });
          const fh = await open(join(dir, 'build.log'), 'a');
          try {
            const size = (await fh.stat()).size;
            const offset = req.query.offset;
            if (offset > size)
              throw new PkgForgeError(
                ErrorCode.usage,
                `The log of attempt ${claim.attempt} has ${size} bytes, not ${offset}`,
              );
            const fresh = chunk.subarray(Math.min(chunk.length, size - offset));
            if (size + fresh.length > LOG_MAX)
              throw new PkgForgeError(
                ErrorCode.tooLarge,
                `The build log of attempt ${claim.attempt} is over the limit of ${LOG_MAX} bytes`,
              );
            if (fresh.length > 0) await fh.write(fresh);
            return { size: size + fresh.length };
          } finally {
            await fh.close();
          }
        });
      },
    );

    app.put(
      '/builder/tasks/:task/attempts/:attempt/files/:name',
      {
        schema: {
          summary:
            'Upload one product of the attempt (streamed, at most the product limit); refused unless its SHA-256 is the one in X-PkgForge-SHA256',
          tags: ['builders'],
          params: Type.Object({ ...AttemptParams.properties, name: Type.String({ maxLength: 255 }) }),
          headers: Type.Object({ 'x-pkgforge-sha256': Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
          consumes: ['application/octet-stream'],
          response: { 201: FileSchema },
        },
      },
      async (req, reply) =>
        // One at a time with the attempt's other uploads, its release and its report: the total is
        // then what is on disk, and nothing is removed under an upload.
        oneAtATime(`attempt:${req.params.task}:${req.params.attempt}`, async () => {
          const claim = await heldClaim(req, req.params.task, req.params.attempt);
          const name = req.params.name;
          const problem = uploadNameProblem(name);
          if (problem)
            throw new PkgForgeError(ErrorCode.unsafePath, `Refused the product '${printable(name)}': ${problem}`);
          const limit = service().productMaxBytes(claim.platform);
          const declared = Number(req.headers['content-length'] ?? NaN);
          if (Number.isFinite(declared) && declared > limit)
            throw new PkgForgeError(
              ErrorCode.tooLarge,
              `The product ${name} (${declared} bytes) is over the limit of ${limit} bytes`,
            );
          const body = byteStream(req.body);
          const dir = join(attemptDir(claim), RECEIVED_DIR);
          await mkdir(dir, { recursive: true });
          // All of an attempt's uploads together: at most what its build could have written (the work directory limit).
          const total = service().uploadMaxBytes(claim.platform);
          const { bytes: already, files } = await received(dir, name);
          if (files >= MAX_UPLOADS)
            throw new PkgForgeError(
              ErrorCode.tooLarge,
              `Attempt ${claim.attempt} has uploaded ${MAX_UPLOADS} files already`,
            );
          if (already + (Number.isFinite(declared) ? declared : 0) > total)
            throw new PkgForgeError(
              ErrorCode.tooLarge,
              `The products of attempt ${claim.attempt} would be over the limit of ${total} bytes together`,
            );
          const partial = join(dir, `.${name}.${randomBytes(4).toString('hex')}.partial`);
          const hash = createHash('sha256');
          let size = 0;
          try {
            await pipeline(
              body,
              new Transform({
                transform(chunk: Buffer, _enc, done) {
                  size += chunk.length;
                  if (already + size > total)
                    return done(
                      new PkgForgeError(
                        ErrorCode.tooLarge,
                        `The products of attempt ${claim.attempt} are over the limit of ${total} bytes together`,
                      ),
                    );
                  if (size > limit)
                    return done(
                      new PkgForgeError(ErrorCode.tooLarge, `The product ${name} is over the limit of ${limit} bytes`),
                    );
                  hash.update(chunk);
                  done(null, chunk);
                },
              }),
              (await open(partial, 'wx', 0o644)).createWriteStream(),
            );
            const sha256 = hash.digest('hex');
            if (sha256 !== req.headers['x-pkgforge-sha256'])
              throw new PkgForgeError(
                ErrorCode.checksum,
                `Refused the product ${name} of attempt ${claim.attempt}: its SHA-256 is ${sha256}, not the ${req.headers['x-pkgforge-sha256']} it was sent with`,
              );
            // Durable before it is acknowledged: the builder forgets what the farm said it has.
            await fsyncFile(partial);
            await rename(partial, join(dir, name));
            return reply.status(201).send({ name, size, sha256 });
          } finally {
            await unlink(partial).catch(() => {});
          }
        }),
    );

    app.post(
      '/builder/tasks/:task/attempts/:attempt/release',
      {
        schema: {
          summary: 'Hand the task back to the queue (the builder stops, or cannot build it now)',
          tags: ['builders'],
          params: AttemptParams,
          body: Type.Object({ reason: Type.String({ maxLength: 4096 }) }),
          response: { 200: Type.Object({ released: Type.Boolean() }) },
        },
      },
      async (req) =>
        oneAtATime(`attempt:${req.params.task}:${req.params.attempt}`, async () => {
          const claim = await heldClaim(req, req.params.task, req.params.attempt);
          const released = await releaseClaim(ctx.registry, claim, req.body.reason);
          await rm(join(attemptDir(claim), RECEIVED_DIR), { recursive: true, force: true });
          return { released };
        }),
    );

    app.post(
      '/builder/tasks/:task/attempts/:attempt/finish',
      {
        // A report may list up to 1000 products: more than the API's default body limit allows.
        bodyLimit: 1024 * 1024,
        schema: {
          summary:
            "Report how the attempt's build ended, once its log and products are uploaded: the farm checks, signs, publishes and records it, and answers how the task ended",
          tags: ['builders'],
          params: AttemptParams,
          body: ReportSchema,
          response: {
            200: Type.Object({
              status: Type.Union([
                Type.Literal('success'),
                Type.Literal('fail'),
                Type.Literal('cancelled'),
                Type.Literal('refused'),
              ]),
              reason: Type.Union([Type.String(), Type.Null()]),
            }),
          },
        },
      },
      async (req, reply) => {
        const { task, attempt } = req.params;
        // One report of an attempt at a time, each looking afresh: a report sent again while the first
        // is still being published waits for it, then gets its recorded answer.
        const answer = await oneAtATime(`attempt:${task}:${attempt}`, () => finish(req, task, attempt));
        if (answer === 'unrecorded') {
          reply.header('retry-after', '5');
          throw new PkgForgeError(
            ErrorCode.unavailable,
            `The outcome of attempt ${attempt} is kept, but the registry could not record it; report it again shortly`,
          );
        }
        return answer;
      },
    );

    /** A report: the farm's side completes it, or, when it was recorded already, its recorded answer. */
    async function finish(
      req: FastifyRequest,
      task: number,
      attempt: number,
    ): Promise<RemoteFinishAnswer | 'unrecorded'> {
      const held = await ownClaim(req, task, attempt);
      if (held !== 'stale') return service().complete(held, req.body as RemoteReport);
      // Reported again after the farm recorded it (its answer was lost): the same answer, not a refusal.
      const row = (await listAttempts(ctx.registry.db, task)).find((a) => a.number === attempt);
      const outcome = row?.outcome;
      if (outcome === 'success' || outcome === 'fail' || outcome === 'cancelled')
        return { status: outcome, reason: row!.reason };
      throw staleAttempt(task, attempt);
    }
  };
}

/** The files and bytes already received for an attempt, but for `except` (a file sent again replaces itself). */
async function received(dir: string, except: string): Promise<{ files: number; bytes: number }> {
  let bytes = 0;
  let files = 0;
  for (const name of await readdir(dir)) {
    if (name === except) continue;
    files++;
    bytes += (await stat(join(dir, name)).catch(() => null))?.size ?? 0;
  }
  return { files, bytes };
}

/** A request's raw body: only `application/octet-stream` is streamed (see the parser above). */
function byteStream(body: unknown): IncomingMessage {
  if (body instanceof Readable) return body as IncomingMessage;
  throw new PkgForgeError(ErrorCode.usage, 'Send the bytes as Content-Type: application/octet-stream');
}

/** Reads a request body of at most `max` bytes (a live log's chunk). */
async function readChunk(body: IncomingMessage, max: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of body as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > max) throw new PkgForgeError(ErrorCode.tooLarge, `A piece of a live log is at most ${max} bytes`);
    parts.push(part);
  }
  return Buffer.concat(parts);
}
