import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { parseInstance } from '../../core/builder-health.ts';
import { readdir, stat } from 'node:fs/promises';
import { filterWarnings } from '../../core/targets.ts';
import { taskResultsPath } from '../../core/results-layout.ts';
import { join } from 'node:path';
import Type from 'typebox';
import { isoTime as iso } from '../../core/time.ts';
import { listAttempts } from '../../registry/attempts.ts';
import { jobDuration, taskDurations } from '../../core/durations.ts';
import { getJobDetail, listJobsPage, type Job, type JobTask } from '../../registry/jobs.ts';
import { listPackageBuilds } from '../../registry/packages.ts';
import { listRefusedEntries } from '../../registry/refused-entries.ts';
import { listPlatforms } from '../../registry/platforms.ts';
import { ErrorCode, PkgForgeError } from '../../util/errors.ts';
import {
  ErrorReply,
  JobDetail,
  JobList,
  JobListQuery,
  PackageBuilds,
  PackageName,
  RefusedEntryList,
  RefusedEntryQuery,
  TaskDetail,
} from '../schemas.ts';
import type { WebContext } from '../context.ts';

function summary(job: Job) {
  return {
    id: job.id,
    status: job.status,
    reason: job.reason,
    bucket: job.bucket,
    submitter: job.submitter,
    platforms: job.platforms,
    archs: job.archs,
    size: job.size,
    submittedAt: iso(job.submittedAt),
    modifiedAt: iso(job.modifiedAt),
    url: `/api/v1/jobs/${encodeURIComponent(job.id)}`,
  };
}

/** A page of a package's builds as the API and its page show them. */
export async function packageBuilds(ctx: WebContext, name: string, limit: number, before?: string) {
  const now = Date.now();
  const page = await listPackageBuilds(ctx.registry.db, name, {
    limit,
    ...(before !== undefined && { before: Number(before) }),
  });
  return {
    builds: page.builds.map((b) => {
      const took = jobDuration({ ...b, since: b.submittedAt ?? b.createdAt }, now);
      return {
        job: b.job,
        url: `/api/v1/jobs/${encodeURIComponent(b.job)}`,
        version: b.version,
        release: b.release,
        file: b.file,
        bucket: b.bucket,
        submitter: b.submitter,
        status: b.status,
        reason: b.reason,
        submittedAt: iso(b.submittedAt),
        modifiedAt: iso(b.modifiedAt),
        tookMs: took.ms,
        ended: took.ended,
        tasks: b.tasks.map((t) => ({
          ...taskSummary(t, now),
          log:
            t.status === 'fail' && t.attempt > 0
              ? `/api/v1/jobs/${encodeURIComponent(b.job)}/tasks/${encodeURIComponent(t.platform)}/${encodeURIComponent(t.arch)}/files/attempt-${t.attempt}/build.log`
              : null,
        })),
      };
    }),
    next: page.next === null ? null : String(page.next),
  };
}

function taskSummary(t: JobTask, now: number) {
  return {
    platform: t.platform,
    arch: t.arch,
    status: t.status,
    reason: t.reason,
    attempt: t.attempt,
    queuedAt: iso(t.queuedAt),
    modifiedAt: iso(t.modifiedAt),
    startedAt: iso(t.startedAt),
    endedAt: iso(t.endedAt),
    ...taskDurations(t, now),
  };
}

export function jobRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/jobs',
      {
        schema: {
          summary: 'Jobs, newest first',
          tags: ['jobs'],
          querystring: JobListQuery,
          response: { 200: JobList },
        },
      },
      async (req) => {
        const q = req.query;
        const page = await listJobsPage(ctx.registry.db, {
          limit: q.limit ?? 50,
          ...(q.submitter !== undefined && { submitter: q.submitter }),
          ...(q.status !== undefined && { status: q.status }),
          ...(q.bucket !== undefined && { bucket: q.bucket }),
          ...(q.package !== undefined && { package: q.package }),
          ...(q.platform !== undefined && { platform: q.platform }),
          ...(q.before !== undefined && { before: Number(q.before) }),
        });
        return { jobs: page.jobs.map(summary), next: page.next === null ? null : String(page.next) };
      },
    );

    app.get(
      '/packages/:name',
      {
        schema: {
          summary: 'Every build of a source package, newest first: job, version, bucket, status, tasks, durations',
          tags: ['jobs'],
          params: Type.Object({ name: PackageName }),
          querystring: Type.Object({
            before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          }),
          response: { 200: PackageBuilds, 404: ErrorReply },
        },
      },
      async (req) => {
        const { name } = req.params;
        const page = await packageBuilds(ctx, name, req.query.limit ?? 50, req.query.before);
        if (page.builds.length === 0 && req.query.before === undefined)
          throw new PkgForgeError(ErrorCode.notFound, `No job has carried a source package named ${name}`);
        return { name, ...page };
      },
    );

    app.get(
      '/refused-entries',
      {
        schema: {
          summary:
            'Incoming entries refused before they became jobs (no loadable build.yml, an id in use), newest first',
          tags: ['jobs'],
          querystring: RefusedEntryQuery,
          response: { 200: RefusedEntryList },
        },
      },
      async (req) => {
        const q = req.query;
        const page = await listRefusedEntries(ctx.registry.db, {
          limit: q.limit ?? 50,
          ...(q.submitter !== undefined && { submitter: q.submitter }),
          ...(q.before !== undefined && { before: Number(q.before) }),
        });
        return {
          entries: page.entries.map((e) => ({
            entry: e.entry,
            status: 'invalid' as const,
            submitter: e.submitter,
            reason: e.reason,
            refusedAt: iso(e.refusedAt),
          })),
          next: page.next === null ? null : String(page.next),
        };
      },
    );

    app.get(
      '/jobs/:id',
      {
        schema: {
          summary: 'A job: manifest, packages, tasks, warnings',
          tags: ['jobs'],
          params: Type.Object({ id: Type.String({ maxLength: 50 }) }),
          response: { 200: JobDetail, 404: ErrorReply },
        },
      },
      async (req) => {
        const job = await getJobDetail(ctx.registry.db, req.params.id);
        if (!job) throw new PkgForgeError(ErrorCode.notFound, `There is no job ${req.params.id}`);
        const platforms = await listPlatforms(ctx.registry.db);
        return {
          ...summary(job),
          report: job.report,
          packages: job.packages,
          tasks: job.tasks.map((t) => taskSummary(t, Date.now())),
          warnings: filterWarnings(job, platforms),
        };
      },
    );

    app.get(
      '/jobs/:id/tasks/:platform/:arch',
      {
        schema: {
          summary: 'A task: attempts and result files',
          tags: ['jobs'],
          params: Type.Object({
            id: Type.String({ maxLength: 50 }),
            platform: Type.String({ maxLength: 20 }),
            arch: Type.String({ maxLength: 20 }),
          }),
          response: { 200: TaskDetail, 404: ErrorReply },
        },
      },
      async (req) => {
        const { id, platform, arch } = req.params;
        const job = await getJobDetail(ctx.registry.db, id);
        const task = job?.tasks.find((t) => t.platform === platform && t.arch === arch);
        if (!job || !task) throw new PkgForgeError(ErrorCode.notFound, `Job ${id} has no task for ${platform}/${arch}`);
        const attempts = await listAttempts(ctx.registry.db, task.id);
        const files: { name: string; size: number }[] = [];
        // Only names the registry knows go into the path, and childPath refuses anything else.
        const dir = join(ctx.results, taskResultsPath(job.id, task.platform, task.arch));
        for (const name of await readdir(dir).catch(() => [] as string[])) {
          const st = await stat(join(dir, name)).catch(() => null);
          if (st?.isFile()) files.push({ name, size: st.size });
        }
        const now = Date.now();
        return {
          job: job.id,
          ...taskSummary(task, now),
          attempts: attempts.map((a) => ({
            number: a.number,
            builder: a.builder,
            host: parseInstance(a.host).host,
            pid: parseInstance(a.host).pid,
            startedAt: iso(a.startedAt),
            endedAt: iso(a.endedAt),
            outcome: a.outcome,
            reason: a.reason,
            durationMs: (a.endedAt ?? now) - a.startedAt,
          })),
          files: files.sort((a, b) => (a.name < b.name ? -1 : 1)),
        };
      },
    );
  };
}
