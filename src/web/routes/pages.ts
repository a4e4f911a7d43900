import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { shownJobStatus } from '../../core/job-status.ts';
import { Eta } from 'eta';
import { taskResultsPath } from '../../core/results-layout.ts';
import { builderView, parseInstance } from '../../core/builder-health.ts';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import Type from 'typebox';
import { displayDuration as duration, jobDuration, taskDurations } from '../../core/durations.ts';
import { displayTime as time } from '../../core/time.ts';
import { JOB_STATUSES, isJobStatus } from '../../core/terms.ts';
import { listAttempts } from '../../registry/attempts.ts';
import { listBuilders } from '../../registry/builders.ts';
import { getJobDetail, listJobsPage, type JobTask } from '../../registry/jobs.ts';
import { listRefusedEntries } from '../../registry/refused-entries.ts';
import { listPlatforms } from '../../registry/platforms.ts';
import { queueCharts } from '../queue-charts.ts';
import { sharedQueues } from '../shared-queues.ts';
import { filterWarnings } from '../../core/targets.ts';
import { packagePath } from '../../util/package-root.ts';
import type { WebContext } from '../context.ts';
import { aptInstallScript } from '../../core/apt-lines.ts';
import { yumInstallScript } from '../../core/yum-lines.ts';
import { packageBuilds } from './jobs.ts';
import { requireReader } from './write.ts';
import { bucketContents, bucketRepositories, publicReposUrl } from './repositories.ts';
import { SAFE_NAME_PATTERN } from '../../core/names.ts';

// The templates stay in src/web/views, for the sources and the bundled program alike.
const eta = new Eta({
  views: packagePath('src', 'web', 'views'),
  autoEscape: true,
  cache: true,
});
/** JSON for inside a <script>: '<' escaped so no string can close the element. */
const js = (v: unknown) => JSON.stringify(v).replaceAll('<', '\\u003c');

function page(title: string, view: string, data: Record<string, unknown>): string {
  return eta.render('layout', { title, body: eta.render(view, { ...data, js }) });
}

const taskApi = (job: string, t: JobTask) =>
  `/api/v1/jobs/${encodeURIComponent(job)}/tasks/${encodeURIComponent(t.platform)}/${encodeURIComponent(t.arch)}`;

/** The files of a task's results, its attempts' included (`attempt-2/build.log`), sorted by name. */
async function resultFiles(ctx: WebContext, job: string, task: JobTask): Promise<{ name: string; size: number }[]> {
  const dir = join(ctx.results, taskResultsPath(job, task.platform, task.arch));
  const files: { name: string; size: number }[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const inner = name.startsWith('attempt-')
      ? (await readdir(join(dir, name)).catch(() => [] as string[])).map((n) => `${name}/${n}`)
      : [name];
    for (const f of inner) {
      const st = await stat(join(dir, f)).catch(() => null);
      if (st?.isFile()) files.push({ name: f, size: st.size });
    }
  }
  return files.sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** What a job page shows of a task's results: its packages, and its current attempt's logs. */
const isProduct = (name: string, attempt: number) =>
  /^[^/]+\.(rpm|deb|dsc|changes|buildinfo)$/.test(name) ||
  (name.startsWith(`attempt-${attempt}/`) && name.endsWith('.log'));

const tookText = (took: { ms: number; ended: boolean }) => `${duration(took.ms)}${took.ended ? '' : ' so far'}`;

/** `queued 3 s · built 1 min 2 s · total 1 min 5 s`, for the durations a task has. */
function durationsText(task: JobTask, now: number): string {
  const d = taskDurations(task, now);
  return [
    d.queuedMs !== null && `queued ${duration(d.queuedMs)}`,
    d.buildMs !== null && `built ${duration(d.buildMs)}${task.status === 'building' ? ' so far' : ''}`,
    d.totalMs !== null && `total ${duration(d.totalMs)}`,
  ]
    .filter(Boolean)
    .join(' · ');
}

/** Server-rendered pages: every user-supplied string goes through the template's escaping. */
export function pageRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    requireReader(ctx, app);
    const html = (body: string) => body;
    app.get(
      '/',
      {
        schema: {
          hide: true,
          querystring: Type.Object({
            status: Type.Optional(Type.String()),
            submitter: Type.Optional(Type.String({ maxLength: 50 })),
            bucket: Type.Optional(Type.String({ maxLength: 50 })),
            package: Type.Optional(Type.String({ maxLength: 100 })),
            before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
          }),
        },
      },
      async (req, reply) => {
        const q = req.query;
        const status = q.status && isJobStatus(q.status) ? q.status : undefined;
        const { jobs, next } = await listJobsPage(ctx.registry.db, {
          limit: 50,
          ...(status && { status }),
          ...(q.submitter && { submitter: q.submitter }),
          ...(q.bucket && { bucket: q.bucket }),
          ...(q.package && { package: q.package }),
          ...(q.before && { before: Number(q.before) }),
        });
        // On the first page: entries refused before they became jobs (invalid, in no bucket).
        const refused =
          q.before === undefined &&
          q.bucket === undefined &&
          !q.package &&
          (status === undefined || status === 'invalid')
            ? (
                await listRefusedEntries(ctx.registry.db, {
                  limit: 20,
                  ...(q.submitter && { submitter: q.submitter }),
                })
              ).entries.map((e) => ({ ...e, refused: time(e.refusedAt) }))
            : [];
        const nextQuery = new URLSearchParams({
          ...(status && { status }),
          ...(q.submitter && { submitter: q.submitter }),
          ...(q.bucket && { bucket: q.bucket }),
          ...(q.package && { package: q.package }),
          ...(next !== null && { before: String(next) }),
        }).toString();
        return reply.type('text/html; charset=utf-8').send(
          html(
            page('Jobs', 'jobs', {
              jobs: jobs.map((j) => ({ ...j, submitted: time(j.submittedAt ?? j.createdAt) })),
              refused,
              statuses: JOB_STATUSES,
              filter: { status, submitter: q.submitter, bucket: q.bucket, package: q.package },
              next,
              nextQuery,
            }),
          ),
        );
      },
    );

    app.get(
      '/jobs/:id',
      { schema: { hide: true, params: Type.Object({ id: Type.String({ maxLength: 50 }) }) } },
      async (req, reply) => {
        const job = await getJobDetail(ctx.registry.db, req.params.id);
        if (!job)
          return reply
            .status(404)
            .type('text/html; charset=utf-8')
            .send(page('Not found', 'notfound', { message: `There is no job ${req.params.id}` }));
        const platforms = [...new Set(job.tasks.map((t) => t.platform))];
        const archs = [...new Set(job.tasks.map((t) => t.arch))].sort();
        // How to install the job's packages from its bucket's repositories, once published there.
        const repos = await bucketRepositories(ctx.repos, job.bucket, publicReposUrl(ctx, req));
        const suites =
          job.family === 'deb' ? (repos.apt?.suites.filter((s) => platforms.includes(s.platform)) ?? []) : [];
        const apt = repos.apt &&
          suites.length > 0 && {
            keyUrl: repos.apt.keyUrl,
            script: aptInstallScript(
              repos.apt.keyPath,
              repos.apt.keyUrl,
              job.bucket,
              suites.map((s) => s.line),
            ),
          };
        const names = [...new Set(job.packages.map((p) => p.name).filter((n): n is string => !!n))];
        const yum =
          job.family === 'rpm'
            ? repos.yum
                .filter((r) => job.tasks.some((t) => t.platform === r.platform && t.arch === r.arch))
                .map((r) => ({ target: `${r.platform}/${r.arch}`, script: yumInstallScript(r.id, r.repoFile, names) }))
            : [];
        const now = Date.now();
        const cells = Object.fromEntries(
          await Promise.all(
            job.tasks.map(async (t) => [
              `${t.platform}/${t.arch}`,
              {
                durations: durationsText(t, now),
                filesBase: `${taskApi(job.id, t)}/files`,
                products: (await resultFiles(ctx, job.id, t)).filter((f) => isProduct(f.name, t.attempt)),
              },
            ]),
          ),
        );
        const took = jobDuration({ ...job, since: job.submittedAt ?? job.createdAt }, now);
        return reply.type('text/html; charset=utf-8').send(
          page(`Job ${job.id}`, 'job', {
            job,
            status: shownJobStatus(
              job.status,
              job.tasks.map((t) => t.status),
            ),
            cells,
            took: tookText(took),
            platforms,
            archs,
            apt: apt || null,
            yum,
            warnings: filterWarnings(job, await listPlatforms(ctx.registry.db)),
            submitted: time(job.submittedAt),
          }),
        );
      },
    );

    app.get(
      '/buckets/:bucket',
      { schema: { hide: true, params: Type.Object({ bucket: Type.String({ maxLength: 50 }) }) } },
      async (req, reply) => {
        const { bucket } = req.params;
        const found = SAFE_NAME_PATTERN.test(bucket)
          ? await bucketContents(ctx.repos, bucket, publicReposUrl(ctx, req))
          : null;
        if (!found)
          return reply
            .status(404)
            .type('text/html; charset=utf-8')
            .send(page('Not found', 'notfound', { message: `Nothing has been published into bucket ${bucket} yet` }));
        return reply.type('text/html; charset=utf-8').send(
          page(`Bucket ${bucket}`, 'bucket', {
            ...found,
            time: (iso: string | null) => (iso === null ? '' : time(Date.parse(iso))),
          }),
        );
      },
    );

    app.get(
      '/packages/:name',
      {
        schema: {
          hide: true,
          params: Type.Object({ name: Type.String({ maxLength: 100 }) }),
          querystring: Type.Object({ before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
        },
      },
      async (req, reply) => {
        const { name } = req.params;
        const { builds, next } = await packageBuilds(ctx, name, 50, req.query.before);
        if (builds.length === 0 && req.query.before === undefined)
          return reply
            .status(404)
            .type('text/html; charset=utf-8')
            .send(page('Not found', 'notfound', { message: `No job has carried a source package named ${name}` }));
        return reply.type('text/html; charset=utf-8').send(
          page(`Package ${name}`, 'package', {
            name,
            builds: builds.map((b) => ({
              ...b,
              submitted: time(b.submittedAt === null ? null : Date.parse(b.submittedAt)),
              took: tookText({ ms: b.tookMs, ended: b.ended }),
            })),
            next,
          }),
        );
      },
    );

    app.get(
      '/jobs/:id/:task',
      {
        schema: {
          hide: true,
          params: Type.Object({ id: Type.String({ maxLength: 50 }), task: Type.String({ maxLength: 41 }) }),
        },
      },
      async (req, reply) => {
        const job = await getJobDetail(ctx.registry.db, req.params.id);
        // Platform names have no dash, so the first one separates platform from arch.
        const cut = req.params.task.indexOf('-');
        const task = job?.tasks.find(
          (t) => t.platform === req.params.task.slice(0, cut) && t.arch === req.params.task.slice(cut + 1),
        );
        if (!job || !task)
          return reply
            .status(404)
            .type('text/html; charset=utf-8')
            .send(page('Not found', 'notfound', { message: `Job ${req.params.id} has no task ${req.params.task}` }));
        const attempts = await listAttempts(ctx.registry.db, task.id);
        const files = await resultFiles(ctx, job.id, task);
        const api = taskApi(job.id, task);
        const now = Date.now();
        return reply.type('text/html; charset=utf-8').send(
          page(`${job.id} ${task.platform}/${task.arch}`, 'task', {
            job: job.id,
            task,
            durations: durationsText(task, now),
            attempts: attempts.map((a) => ({
              ...a,
              host: parseInstance(a.host).host,
              startedAt: time(a.startedAt),
              endedAt: a.endedAt === null ? null : time(a.endedAt),
              took: duration((a.endedAt ?? now) - a.startedAt),
            })),
            files,
            filesBase: `${api}/files`,
            logUrl: `${api}/log`,
            taskUrl: api,
          }),
        );
      },
    );

    app.get('/queue', { schema: { hide: true } }, async (_req, reply) => {
      const queues = await sharedQueues(ctx.registry, ctx.healthyWithinMs, 50);
      const charts = await queueCharts(ctx.registry);
      return reply.type('text/html; charset=utf-8').send(
        page('Queue', 'queue', {
          charts,
          queues: queues.map((q) => ({ ...q, waiting: q.waiting.map((w) => ({ ...w, queued: time(w.queuedAt) })) })),
        }),
      );
    });

    app.get('/platforms', { schema: { hide: true } }, async (_req, reply) =>
      reply
        .type('text/html; charset=utf-8')
        .send(page('Platforms', 'platforms', { platforms: await listPlatforms(ctx.registry.db) })),
    );

    app.get('/builders', { schema: { hide: true } }, async (_req, reply) => {
      const now = Date.now();
      const builders = (await listBuilders(ctx.registry.db)).map((b) => {
        const view = builderView(b, now, ctx.healthyWithinMs);
        return {
          ...view,
          // The status colours: running ones as building, stopped and offline grey, unable red.
          stateClass: {
            building: 'building',
            idle: 'success',
            stopped: 'cancelled',
            offline: 'cancelled',
            unable: 'fail',
          }[view.state],
          lastHeartbeat: b.lastHeartbeatAt === null ? null : time(b.lastHeartbeatAt),
          stopped: view.state === 'stopped' ? time(b.stoppedAt) : null,
        };
      });
      return reply.type('text/html; charset=utf-8').send(page('Builders', 'builders', { builders }));
    });
  };
}
