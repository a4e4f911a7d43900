import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { sql } from 'kysely';
import type { WebContext } from '../app.ts';

const esc = (v: string) => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

/** /metrics in the Prometheus text format: queue depth, jobs and tasks by status, builds, leases, builders. */
export function metricsRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
      const db = ctx.registry.db;
      const lines: string[] = [];
      const metric = (name: string, help: string, type: string, rows: [Record<string, string>, number][]) => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
        for (const [labels, value] of rows) {
          const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
          lines.push(`${name}${l ? `{${l}}` : ''} ${value}`);
        }
      };
      const jobs = await db.selectFrom('jobs').select(['status', sql<number>`count(*)`.as('n')]).groupBy('status').execute();
      metric('pkgforge_jobs', 'Jobs by status.', 'gauge', jobs.map((r) => [{ status: r.status }, Number(r.n)]));
      const tasks = await db
        .selectFrom('tasks')
        .innerJoin('platforms', 'platforms.id', 'tasks.platform_id')
        .select(['platforms.name', 'platforms.arch', 'tasks.status', sql<number>`count(*)`.as('n')])
        .groupBy(['platforms.name', 'platforms.arch', 'tasks.status'])
        .execute();
      metric('pkgforge_tasks', 'Tasks by platform and status.', 'gauge', tasks.map((r) => [{ platform: r.name, arch: r.arch, status: r.status }, Number(r.n)]));
      metric('pkgforge_queue_depth', 'Tasks waiting to be built, by platform.', 'gauge', tasks.filter((r) => r.status === 'needs build').map((r) => [{ platform: r.name, arch: r.arch }, Number(r.n)]));
      const attempts = await db.selectFrom('attempts').select(['outcome', sql<number>`count(*)`.as('n'), sql<number>`sum(ended_at - started_at)`.as('ms')]).where('ended_at', 'is not', null).groupBy('outcome').execute();
      metric('pkgforge_build_attempts_total', 'Finished build attempts by outcome (lease expired counts lease expiries).', 'counter', attempts.map((r) => [{ outcome: r.outcome ?? 'unknown' }, Number(r.n)]));
      metric('pkgforge_build_seconds_total', 'Time spent in finished build attempts, by outcome.', 'counter', attempts.map((r) => [{ outcome: r.outcome ?? 'unknown' }, Number(r.ms ?? 0) / 1000]));
      const builders = await db.selectFrom('builders').innerJoin('platforms', 'platforms.id', 'builders.platform_id').select(['builders.name', 'platforms.name as platform', 'platforms.arch', 'builders.last_heartbeat_at', 'builders.unable_reason']).execute();
      const now = Date.now();
      metric('pkgforge_builder_heartbeat_age_seconds', 'Seconds since each builder last sent a heartbeat.', 'gauge', builders.filter((b) => b.last_heartbeat_at !== null).map((b) => [{ builder: b.name, platform: b.platform, arch: b.arch }, (now - b.last_heartbeat_at!) / 1000]));
      metric('pkgforge_builder_healthy', 'Whether each builder sent a heartbeat recently and can build (1) or not (0).', 'gauge', builders.map((b) => [{ builder: b.name, platform: b.platform, arch: b.arch }, b.unable_reason === null && b.last_heartbeat_at !== null && now - b.last_heartbeat_at <= ctx.healthyWithinMs ? 1 : 0]));
      return reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(`${lines.join('\n')}\n`);
    });
  };
}
