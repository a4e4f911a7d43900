import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { isBuilderHealthy } from '../../core/builder-health.ts';
import { isoTime as iso } from '../../core/time.ts';
import { listBuilders } from '../../registry/builders.ts';
import { listPlatforms } from '../../registry/platforms.ts';
import { sharedQueues } from '../shared-queues.ts';
import { Builder, Platform, Queue } from '../schemas.ts';
import type { WebContext } from '../context.ts';

/** Platforms, builders and the queue: what the farm has and why a job waits. */
export function farmRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/platforms',
      { schema: { summary: 'Platforms', tags: ['farm'], response: { 200: Type.Array(Platform) } } },
      async () =>
        (await listPlatforms(ctx.registry.db)).map(({ name, arch, active, auto, family }) => ({
          name,
          arch,
          active,
          auto,
          family,
        })),
    );

    app.get(
      '/builders',
      {
        schema: {
          summary: 'Builders, with their current task and health',
          tags: ['farm'],
          response: { 200: Type.Array(Builder) },
        },
      },
      async () => {
        const now = Date.now();
        return (await listBuilders(ctx.registry.db)).map((b) => ({
          name: b.name,
          platform: b.platform,
          arch: b.arch,
          host: b.host,
          currentTask: b.currentTaskId,
          lastHeartbeat: iso(b.lastHeartbeatAt),
          healthy: isBuilderHealthy(b, now, ctx.healthyWithinMs),
          unableToBuild: b.unableReason,
          sandbox: b.sandbox,
        }));
      },
    );

    app.get(
      '/queue',
      {
        schema: {
          summary: "Each platform's first waiting tasks, their positions, how many wait and why",
          tags: ['farm'],
          querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })) }),
          response: { 200: Type.Array(Queue) },
        },
      },
      async (req) =>
        (await sharedQueues(ctx.registry, ctx.healthyWithinMs, req.query.limit ?? 50)).map((q) => ({
          platform: q.platform,
          arch: q.arch,
          active: q.active,
          waitingTotal: q.waitingTotal,
          building: q.building,
          builders: q.builders,
          why: q.why,
          waiting: q.waiting.map((w) => ({
            position: w.position,
            job: w.jobId,
            bucket: w.bucket,
            submitter: w.submitter,
            queuedAt: iso(w.queuedAt),
            nextAttempt: w.nextAttempt,
          })),
        })),
    );
  };
}
