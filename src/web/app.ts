import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from '../registry/registry.ts';
import { ErrorCode, isPkgForgeError } from '../util/errors.ts';
import { farmRoutes } from './routes/farm.ts';
import { fileRoutes } from './routes/files.ts';
import { jobRoutes } from './routes/jobs.ts';
import { metricsRoutes } from './routes/metrics.ts';

/** What the web application needs. */
export interface WebContext {
  registry: Registry;
  results: string;
  /** A builder whose last heartbeat is older than this is not healthy (the lease expiry). */
  healthyWithinMs: number;
}

const STATUS: Partial<Record<string, number>> = { [ErrorCode.notFound]: 404, [ErrorCode.usage]: 400, [ErrorCode.exists]: 409, [ErrorCode.jobId]: 400, [ErrorCode.manifest]: 400 };

/**
 * The HTTP application: the JSON API under /api/v1 with its OpenAPI document (/api/v1/openapi.json,
 * browsable at /api/docs). Tests build it and call it with inject(); `pkgforge web` listens.
 */
export async function buildApp(ctx: WebContext, options: { logger?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: options.logger ?? false }).withTypeProvider<TypeBoxTypeProvider>();
  await app.register(swagger, {
    openapi: { info: { title: 'PkgForge API', version: '1', description: 'Jobs, tasks, platforms, builders and the queue of a PkgForge build farm.' } },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs' });
  // Domain errors become 4xx with their code; anything else is a 500 whose details stay in the log.
  app.setErrorHandler((err, req, reply) => {
    if (isPkgForgeError(err)) {
      const statusCode = STATUS[err.code] ?? 400;
      return reply.status(statusCode).send({ statusCode, code: err.code, error: statusCode === 404 ? 'Not Found' : 'Bad Request', message: err.message });
    }
    const e = err as { validation?: unknown; statusCode?: number; message: string };
    if (e.validation || (e.statusCode !== undefined && e.statusCode < 500)) {
      const statusCode = e.statusCode ?? 400;
      return reply.status(statusCode).send({ statusCode, code: 'PKGF_ERR_USAGE', error: 'Bad Request', message: e.message });
    }
    req.log.error(err);
    return reply.status(500).send({ statusCode: 500, code: 'PKGF_ERR_INTERNAL', error: 'Internal Server Error', message: 'Something went wrong; the server log has the details.' });
  });
  await app.register(
    async (api) => {
      await api.register(jobRoutes(ctx));
      await api.register(farmRoutes(ctx));
      await api.register(fileRoutes(ctx));
      api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    },
    { prefix: '/api/v1' },
  );
  await app.register(metricsRoutes(ctx));
  return app;
}
