import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { isBuilderHealthy } from '../../core/builder-health.ts';
import { TaskStatus } from '../../core/terms.ts';
import { farmCounts } from '../../registry/metrics.ts';
import type { WebContext } from '../context.ts';

const esc = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

/** /metrics in the Prometheus text format: queue depth, jobs and tasks by status, builds, leases, builders. */
export function metricsRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      const lines: string[] = [];
      const metric = (name: string, help: string, type: string, rows: [Record<string, string>, number][]) => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
        for (const [labels, value] of rows) {
          const l = Object.entries(labels)
            .map(([k, v]) => `${k}="${esc(v)}"`)
            .join(',');
          lines.push(`${name}${l ? `{${l}}` : ''} ${value}`);
        }
      };
      const { jobs, tasks, attempts, builders } = await farmCounts(ctx.registry.db);
      metric(
        'pkgforge_jobs',
        'Jobs by status.',
        'gauge',
        jobs.map((r) => [{ status: r.status }, r.n]),
      );
      metric(
        'pkgforge_tasks',
        'Tasks by platform and status.',
        'gauge',
        tasks.map((r) => [{ platform: r.platform, arch: r.arch, status: r.status }, r.n]),
      );
      metric(
        'pkgforge_queue_depth',
        'Tasks waiting to be built, by platform.',
        'gauge',
        tasks
          .filter((r) => r.status === TaskStatus.needsBuild)
          .map((r) => [{ platform: r.platform, arch: r.arch }, r.n]),
      );
      metric(
        'pkgforge_build_attempts_total',
        'Finished build attempts by outcome (lease expired counts lease expiries).',
        'counter',
        attempts.map((r) => [{ outcome: r.outcome }, r.n]),
      );
      metric(
        'pkgforge_build_seconds_total',
        'Time spent in finished build attempts, by outcome.',
        'counter',
        attempts.map((r) => [{ outcome: r.outcome }, r.ms / 1000]),
      );
      const now = Date.now();
      const labels = (b: (typeof builders)[number]) => ({ builder: b.name, platform: b.platform, arch: b.arch });
      metric(
        'pkgforge_builder_heartbeat_age_seconds',
        'Seconds since each builder last sent a heartbeat.',
        'gauge',
        builders.filter((b) => b.lastHeartbeatAt !== null).map((b) => [labels(b), (now - b.lastHeartbeatAt!) / 1000]),
      );
      metric(
        'pkgforge_builder_healthy',
        'Whether each builder sent a heartbeat recently and can build (1) or not (0).',
        'gauge',
        builders.map((b) => [labels(b), isBuilderHealthy(b, now, ctx.healthyWithinMs) ? 1 : 0]),
      );
      return reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(`${lines.join('\n')}\n`);
    });
  };
}
