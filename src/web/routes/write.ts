import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { normaliseManifest, type PackageEntry, type PackagePart } from '../../core/manifest.ts';
import { assertJobId, generateJobId, printable, splitList } from '../../core/names.ts';
import { sourceTypeOf } from '../../sources/index.ts';
import { JobDirWriter } from '../../sources/job-dir.ts';
import { findJob } from '../../registry/jobs.ts';
import { cancelTasks, retryTasks } from '../../registry/tasks.ts';
import { userOfToken } from '../../registry/tokens.ts';
import { ErrorCode, PkgForgeError } from '../../util/errors.ts';
import type { WebContext } from '../context.ts';

/** The user of the request's bearer token; 401 without a valid one. */
export async function requireUser(ctx: WebContext, req: FastifyRequest): Promise<string> {
  const header = req.headers.authorization ?? '';
  // Package managers cannot send a bearer token: dnf (username=, password=) and apt (auth.conf)
  // send it as the password of HTTP basic auth, the user name being anything.
  const token = header.startsWith('Bearer ')
    ? header.slice(7).trim()
    : header.startsWith('Basic ')
      ? Buffer.from(header.slice(6).trim(), 'base64').toString('utf8').split(':').slice(1).join(':')
      : '';
  const user = token ? await userOfToken(ctx.registry.db, token) : null;
  if (!user)
    throw new PkgForgeError(
      ErrorCode.auth,
      'This needs a valid API token: Authorization: Bearer <token>, or as the password of basic auth (pkgforge token create)',
    );
  return user;
}

/**
 * With `read_requires_token`, what a plugin serves to readers who are not API clients (pages,
 * repositories, feeds) needs the token too: as a bearer token or as the password of basic auth,
 * with the challenge that makes browsers, feed readers and package managers send it.
 */
export function requireReader(ctx: WebContext, app: FastifyInstance): void {
  if (!ctx.readRequiresToken) return;
  app.addHook('onRequest', async (req, reply) => {
    await requireUser(ctx, req).catch((err: unknown) => {
      reply.header('www-authenticate', 'Basic realm="PkgForge"');
      throw err;
    });
  });
}

const Steer = Type.Object({
  platform: Type.Optional(Type.String({ maxLength: 20 })),
  arch: Type.Optional(Type.String({ maxLength: 20 })),
});
const IdParams = Type.Object({ id: Type.String({ maxLength: 50 }) });
const FIELDS = new Set(['bucket', 'platforms', 'archs', 'report', 'id']);

/** Writing over HTTP: uploads, cancel and retry. Every route needs a token. */
export function writeRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    // One byte over the limit lets our own check (with its message) see an oversized file.
    await app.register(multipart, {
      limits: { fileSize: ctx.uploadMaxBytes + 1, files: 100, fields: 20, fieldSize: 64 * 1024, parts: 120 },
    });
    // Authentication comes first, before the body is read or checked: 401, not 400, for a stranger.
    const users = new WeakMap<FastifyRequest, string>();
    app.addHook('onRequest', async (req) => void users.set(req, await requireUser(ctx, req)));
    const userOf = (req: FastifyRequest) => users.get(req)!;

    app.post(
      '/jobs',
      {
        schema: {
          summary:
            'Submit a job: multipart fields bucket, platforms, archs, report, id (optional), then one `file` part per source package in build order',
          tags: ['jobs'],
          consumes: ['multipart/form-data'],
          response: {
            201: Type.Object({ id: Type.String(), url: Type.String(), packages: Type.Array(Type.String()) }),
          },
        },
      },
      async (req, reply) => {
        const user = userOf(req);
        if (!req.isMultipart()) throw new PkgForgeError(ErrorCode.usage, 'Send the job as multipart/form-data');
        const fields: Record<string, string[]> = {};
        let writer: JobDirWriter | null = null;
        // The packages in order, with the files each lists still to come (a .dsc's, after it).
        const packages: { entry: PackageEntry; lists: PackagePart[] }[] = [];
        const awaited = new Map<string, { part: PackagePart; owner: string }>();
        try {
          for await (const part of req.parts()) {
            if (part.type === 'field') {
              if (writer) throw new PkgForgeError(ErrorCode.usage, 'Send the fields before the file parts');
              if (!FIELDS.has(part.fieldname))
                throw new PkgForgeError(
                  ErrorCode.usage,
                  `Unknown field '${part.fieldname}'; fields are ${[...FIELDS].join(', ')} and file`,
                );
              (fields[part.fieldname] ??= []).push(String(part.value));
              continue;
            }
            if (part.fieldname !== 'file')
              throw new PkgForgeError(ErrorCode.usage, `File parts must be named 'file', not '${part.fieldname}'`);
            if (!writer) {
              const id = fields.id?.[0] ?? generateJobId();
              assertJobId(id);
              // Said now rather than by the incoming processor later: the id was used before.
              if (await findJob(ctx.registry.db, id))
                throw new PkgForgeError(
                  ErrorCode.jobId,
                  `A job with ID ${id} has been previously registered; choose another id`,
                );
              writer = await JobDirWriter.create(ctx.incoming, id);
            }
            const listed = awaited.get(part.filename);
            if (!listed && !sourceTypeOf(part.filename))
              throw new PkgForgeError(
                ErrorCode.sourcePackage,
                `${printable(part.filename)} is neither a source package nor a file that a .dsc sent before it lists`,
              );
            if (listed) {
              if (listed.part.size > ctx.uploadMaxBytes)
                throw new PkgForgeError(
                  ErrorCode.tooLarge,
                  `${listed.part.file} is larger than the upload limit of ${ctx.uploadMaxBytes} bytes`,
                );
              awaited.delete(part.filename);
              await writer.addPartStream(part.file, listed.part, listed.owner);
            } else {
              const added = await writer.addStream(part.filename, part.file, ctx.uploadMaxBytes);
              packages.push(added);
              for (const p of added.lists) awaited.set(p.file, { part: p, owner: added.entry.file });
            }
            if (part.file.truncated)
              throw new PkgForgeError(
                ErrorCode.tooLarge,
                `${part.filename} is larger than the upload limit of ${ctx.uploadMaxBytes} bytes`,
              );
          }
          if (!writer) throw new PkgForgeError(ErrorCode.usage, 'No packages: send one `file` part per source package');
          const missing = [...awaited.values()][0];
          if (missing)
            throw new PkgForgeError(
              ErrorCode.sourcePackage,
              `${missing.owner} lists ${missing.part.file}, which was not uploaded (send each file a .dsc lists after it)`,
            );
          const manifest = normaliseManifest(
            {
              id: writer.id,
              bucket: fields.bucket?.[0],
              platforms: splitList(fields.platforms ?? []),
              archs: splitList(fields.archs ?? []),
              report: splitList(fields.report ?? []),
              packages: packages.map(({ entry, lists }) =>
                lists.length > 0 ? { ...entry, parts: lists.map((l) => writer!.part(l.file)!) } : entry,
              ),
              submitter: user,
              subtime: null,
            },
            `job ${writer.id}`,
          );
          await writer.finish(manifest);
          const url = `/api/v1/jobs/${encodeURIComponent(manifest.id)}`;
          return reply
            .status(201)
            .header('location', url)
            .send({ id: manifest.id, url, packages: manifest.packages.map((p) => p.file) });
        } catch (err) {
          await writer?.abandon();
          throw err;
        }
      },
    );

    app.post(
      '/jobs/:id/cancel',
      {
        schema: {
          summary: "Cancel a job's waiting and running tasks",
          tags: ['jobs'],
          params: IdParams,
          body: Type.Optional(Steer),
        },
      },
      async (req) => {
        const user = userOf(req);
        const done = await cancelTasks(
          ctx.registry,
          req.params.id,
          {
            ...(req.body?.platform && { platform: req.body.platform }),
            ...(req.body?.arch && { arch: req.body.arch }),
          },
          user,
        );
        return { cancelled: done };
      },
    );

    app.post(
      '/jobs/:id/retry',
      {
        schema: {
          summary: "Requeue a job's failed and cancelled tasks",
          tags: ['jobs'],
          params: IdParams,
          body: Type.Optional(Steer),
        },
      },
      async (req) => {
        const done = await retryTasks(ctx.registry, req.params.id, {
          ...(req.body?.platform && { platform: req.body.platform }),
          ...(req.body?.arch && { arch: req.body.arch }),
        });
        return { retried: done };
      },
    );
  };
}
