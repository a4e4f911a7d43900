import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { builderView } from '../../core/builder-health.ts';
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
          summary: 'Builders: their state, host, last heartbeat and the job in hand',
          tags: ['farm'],
          response: { 200: Type.Array(Builder) },
        },
      },
      async () => {
        const now = Date.now();
        return (await listBuilders(ctx.registry.db)).map((b) => builderView(b, now, ctx.healthyWithinMs));
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
