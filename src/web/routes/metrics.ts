import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createHistogram } from 'node:perf_hooks';
import { BUILDER_STATES, builderState, isBuilderHealthy } from '../../core/builder-health.ts';
import { TaskStatus } from '../../core/terms.ts';
import { farmCounts } from '../../registry/metrics.ts';
import type { WebContext } from '../context.ts';

const esc = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

/** How often the event loop's lateness is sampled. */
const TICK_MS = 10;

/** /metrics in the Prometheus text format: queue depth, jobs and tasks by status, builds, leases, builders. */
export function metricsRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    // How long requests waited for the server's one thread: a query that blocks it (SQLite's are
    // synchronous) delays every other request by as much. Reset at each scrape.
    const delay = createHistogram();
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      delay.record(Math.max(1, Math.round((now - last - TICK_MS) * 1e6)));
      last = now;
    }, TICK_MS).unref();
    app.addHook('onClose', async () => clearInterval(tick));
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      const lines: string[] = [];
      // Read before this scrape's own queries add to it.
      const delays: [Record<string, string>, number][] = [
        [{ quantile: '0.5' }, delay.percentile(50) / 1e9],
        [{ quantile: '0.99' }, delay.percentile(99) / 1e9],
        [{ quantile: '1' }, delay.max / 1e9],
      ];
      delay.reset();
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
      metric(
        'pkgforge_builder_state',
        `Each builder's state (1 for the one it is in): ${BUILDER_STATES.join(', ')}.`,
        'gauge',
        builders.flatMap((b) => {
          const state = builderState(b, now, ctx.healthyWithinMs);
          return BUILDER_STATES.map((s): [Record<string, string>, number] => [
            { ...labels(b), state: s },
            s === state ? 1 : 0,
          ]);
        }),
      );
      metric(
        'pkgforge_web_event_loop_delay_seconds',
        "How late the web server's event loop ran since the last scrape: what a slow request cost every other.",
        'summary',
        delays,
      );
      return reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(`${lines.join('\n')}\n`);
    });
  };
}
