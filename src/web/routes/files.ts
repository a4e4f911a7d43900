import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createReadStream } from 'node:fs';
import { taskResultsPath } from '../../core/results-layout.ts';
import { stat } from 'node:fs/promises';
import { followLog } from '../../util/follow-log.ts';
import { join } from 'node:path';
import Type from 'typebox';
import { getJobDetail } from '../../registry/jobs.ts';
import { ErrorCode, PkgForgeError } from '../../util/errors.ts';
import type { WebContext } from '../context.ts';

const TaskParams = Type.Object({
  id: Type.String({ maxLength: 50 }),
  platform: Type.String({ maxLength: 20 }),
  arch: Type.String({ maxLength: 20 }),
});
/** A file of the task's results, or of one attempt's directory (`attempt-2/build.log`). */
const FILE_NAME = /^(attempt-[0-9]{1,6}\/)?[A-Za-z0-9_][A-Za-z0-9_.+~-]{0,250}$/;

async function taskDir(ctx: WebContext, id: string, platform: string, arch: string) {
  const job = await getJobDetail(ctx.registry.db, id);
  const task = job?.tasks.find((t) => t.platform === platform && t.arch === arch);
  if (!job || !task) throw new PkgForgeError(ErrorCode.notFound, `Job ${id} has no task for ${platform}/${arch}`);
  return { task, dir: join(ctx.results, taskResultsPath(job.id, task.platform, task.arch)) };
}

/**
 * Downloads from the results directory (never a path outside it) and the live build log. A quiet log
 * still sends a comment every `logHeartbeatMs`, so neither idle_timeout nor a proxy closes the stream.
 */
export function fileRoutes(ctx: WebContext, { logHeartbeatMs }: { logHeartbeatMs: number }): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/jobs/:id/tasks/:platform/:arch/files/*',
      {
        schema: {
          summary: "Download a file of a task's results (buildinfo.yml, a log, a package)",
          tags: ['jobs'],
          params: Type.Object({ ...TaskParams.properties, '*': Type.String() }),
        },
      },
      async (req, reply) => {
        const name = req.params['*'];
        if (!FILE_NAME.test(name))
          throw new PkgForgeError(ErrorCode.notFound, `No file '${name}' in the results of this task`);
        const { dir } = await taskDir(ctx, req.params.id, req.params.platform, req.params.arch);
        const path = join(dir, name);
        const st = await stat(path).catch(() => null);
        if (!st?.isFile()) throw new PkgForgeError(ErrorCode.notFound, `No file '${name}' in the results of this task`);
        const type = name.endsWith('.rpm')
          ? 'application/x-rpm'
          : name.endsWith('.deb')
            ? 'application/vnd.debian.binary-package'
            : name.endsWith('.yml')
              ? 'application/yaml; charset=utf-8'
              : 'text/plain; charset=utf-8';
        return reply
          .header('content-type', type)
          .header('content-length', st.size)
          .header(
            'content-disposition',
            `${/\.(rpm|deb)$/.test(name) ? 'attachment' : 'inline'}; filename="${name.split('/').pop()}"`,
          )
          .header('x-content-type-options', 'nosniff')
          .send(createReadStream(path));
      },
    );

    app.get(
      '/jobs/:id/tasks/:platform/:arch/log',
      {
        schema: {
          summary: "The build log of the task's latest attempt as a live event stream",
          description:
            'text/event-stream; each event carries new log text and, as its id, the byte offset after it, so a client that reconnects with Last-Event-ID resumes where it stopped. The stream ends (event `end`) when the attempt ends.',
          tags: ['jobs'],
          params: TaskParams,
          querystring: Type.Object({ attempt: Type.Optional(Type.Integer({ minimum: 1 })) }),
        },
      },
      async (req, reply) => {
        const { id, platform, arch } = req.params;
        const first = await taskDir(ctx, id, platform, arch);
        const attempt = req.query.attempt ?? first.task.attempt;
        if (attempt < 1)
          throw new PkgForgeError(
            ErrorCode.notFound,
            `The task ${platform}/${arch} of job ${id} has not started building yet`,
          );
        const path = join(first.dir, `attempt-${attempt}`, 'build.log');
        const resume = Number(req.headers['last-event-id']);
        const offset = Number.isInteger(resume) && resume > 0 ? resume : 0;
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-cache',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        let closed = false;
        const gone = new AbortController();
        req.raw.on('close', () => gone.abort());
        const stillRunning = async () => {
          const now = await getJobDetail(ctx.registry.db, id);
          const task = now?.tasks.find((t) => t.platform === platform && t.arch === arch);
          return task !== undefined && task.attempt === attempt && task.status === 'building';
        };
        const heartbeat = setInterval(() => res.write(': waiting for the build\n\n'), logHeartbeatMs);
        try {
          for await (const { chunk, offset: after } of followLog(path, {
            offset,
            follow: true,
            stillRunning,
            signal: gone.signal,
          })) {
            // One event per read; each line of text as a data: line (SSE's framing).
            res.write(
              `id: ${after}\n${chunk
                .toString('utf8')
                .split('\n')
                .map((l) => `data: ${l}`)
                .join('\n')}\n\n`,
            );
          }
        } finally {
          clearInterval(heartbeat);
        }
        closed = gone.signal.aborted;
        if (!closed) res.end(`event: end\ndata: ${attempt}\n\n`);
      },
    );
  };
}
