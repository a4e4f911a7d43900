import { STATUS_CODES } from 'node:http';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import { httpLimits } from '../config/load-config.ts';
import { transientRegistryError } from '../registry/retry.ts';
import { ErrorCode, httpStatusOf, isPkgForgeError } from '../util/errors.ts';
import type { Log } from '../util/log.ts';
import { builderApiRoutes } from './routes/builder-api.ts';
import { farmRoutes } from './routes/farm.ts';
import { feedRoutes } from './routes/feeds.ts';
import { fileRoutes } from './routes/files.ts';
import { jobRoutes } from './routes/jobs.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { pageRoutes } from './routes/pages.ts';
import { repoFileRoutes } from './routes/repo-files.ts';
import { repositoryRoutes } from './routes/repositories.ts';
import { requireUser, writeRoutes } from './routes/write.ts';
import type { WebContext } from './context.ts';
import { httpLimiter } from './limits.ts';

export type { WebContext } from './context.ts';

/**
 * The HTTP application: the JSON API under /api/v1 with its OpenAPI document (/api/v1/openapi.json,
 * browsable at /api/docs). Tests build it and call it with inject(); `pkgforge web` listens.
 */
export async function buildApp(
  ctx: WebContext,
  options: { logger?: boolean; log?: Log } = {},
): Promise<FastifyInstance> {
  const limits = { ...httpLimits({}), ...ctx.limits };
  const limiter = httpLimiter(limits);
  // A server's warnings and errors (a 500's details) go to the farm's log; requests are not logged.
  const logging = options.log
    ? {
        loggerInstance: options.log.child({ component: 'web' }, { level: 'warn' }) as FastifyBaseLogger,
        disableRequestLogging: true,
      }
    : { logger: options.logger ?? false };
  const app = Fastify({ ...limiter.options, ...logging }).withTypeProvider<TypeBoxTypeProvider>();
  limiter.attach(app);
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'PkgForge API',
        version: '1',
        description: 'Jobs, tasks, platforms, builders and the queue of a PkgForge build farm.',
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });
  // Domain errors answer the status their code carries (util/errors.ts); Fastify's own (validation,
  // body limits) keep theirs; anything else is a 500 whose details stay in the log.
  const send = (reply: FastifyReply, code: ErrorCode, message: string, statusCode = httpStatusOf(code)) =>
    reply.status(statusCode).send({ statusCode, code, error: STATUS_CODES[statusCode], message });
  app.setErrorHandler((err, req, reply) => {
    if (isPkgForgeError(err)) {
      if (httpStatusOf(err.code) >= 500) req.log.error(err);
      return send(reply, err.code, err.message);
    }
    const e = err as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation || (e.statusCode !== undefined && e.statusCode < 500)) {
      const statusCode = e.statusCode ?? 400;
      return send(
        reply,
        statusCode === 401 ? ErrorCode.auth : statusCode === 413 ? ErrorCode.tooLarge : ErrorCode.usage,
        e.message,
        statusCode,
      );
    }
    // The registry being away is a passing state the client can wait out, not a fault of ours.
    const away = transientRegistryError(err);
    if (away) {
      req.log.warn({ err: e.message }, 'registry unavailable');
      reply.header('retry-after', '5');
      return send(reply, ErrorCode.unavailable, `The registry is unavailable (${away}); try again shortly.`);
    }
    req.log.error(err);
    return send(reply, ErrorCode.internal, 'Something went wrong; the server log has the details.');
  });
  await app.register(
    async (api) => {
      await api.register(jobRoutes(ctx));
      await api.register(farmRoutes(ctx));
      await api.register(fileRoutes(ctx, { logHeartbeatMs: Math.min(15_000, (limits.idleTimeoutMs || Infinity) / 2) }));
      await api.register(writeRoutes(ctx));
      await api.register(repositoryRoutes(ctx));
      if (ctx.readRequiresToken)
        api.addHook('onRequest', async (req) => void (req.method === 'GET' && (await requireUser(ctx, req))));
      api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    },
    { prefix: '/api/v1' },
  );
  // Beside the API, not in it: builder tokens are not users' tokens, whatever read_requires_token says.
  await app.register(builderApiRoutes(ctx), { prefix: '/api/v1' });
  await app.register(repoFileRoutes(ctx));
  await app.register(feedRoutes(ctx));
  await app.register(metricsRoutes(ctx));
  await app.register(pageRoutes(ctx));
  return app;
}
