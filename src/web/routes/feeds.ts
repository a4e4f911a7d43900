import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { SAFE_NAME_PATTERN } from '../../core/names.ts';
import { isoTime } from '../../core/time.ts';
import { listFinishedJobs, type Job, type JobTask } from '../../registry/jobs.ts';
import type { WebContext } from '../context.ts';
import { publicBaseUrl } from './repositories.ts';
import { requireReader } from './write.ts';

/**
 * Text for XML: the five characters that could end or open markup escaped, and those XML cannot
 * hold at all (NUL, most control characters, as in a build's colour codes) replaced, so no reason
 * can make a feed unreadable.
 */
const xml = (s: string) =>
  s
    .replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '\uFFFD')
    .replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

/** An Atom feed (RFC 4287) of finished jobs: one entry per job, updated when it last changed. */
function atomFeed(base: string, self: string, title: string, jobs: (Job & { tasks: JobTask[] })[]): string {
  const updated = isoTime(Math.max(0, ...jobs.map((j) => j.modifiedAt))) ?? new Date(0).toISOString();
  const entries = jobs.map((j) => {
    const url = `${base}/jobs/${encodeURIComponent(j.id)}`;
    const summary = [
      `${j.status}${j.reason ? `: ${j.reason}` : ''} (bucket ${j.bucket})`,
      ...j.tasks.map((t) => `${t.platform}/${t.arch}: ${t.status}${t.reason ? `: ${t.reason}` : ''}`),
    ].join('\n');
    return [
      '  <entry>',
      `    <id>${xml(url)}</id>`,
      `    <title>${xml(`Job ${j.id}: ${j.status}`)}</title>`,
      `    <link rel="alternate" type="text/html" href="${xml(url)}"/>`,
      `    <updated>${isoTime(j.modifiedAt)}</updated>`,
      ...(j.submittedAt !== null ? [`    <published>${isoTime(j.submittedAt)}</published>`] : []),
      `    <author><name>${xml(j.submitter ?? 'unknown')}</name></author>`,
      `    <category term="${xml(j.status)}"/>`,
      `    <summary>${xml(summary)}</summary>`,
      '  </entry>',
    ].join('\n');
  });
  return [
    '<?xml version="1.0" encoding="utf-8"?>',
    '<feed xmlns="http://www.w3.org/2005/Atom">',
    `  <id>${xml(self)}</id>`,
    `  <title>${xml(title)}</title>`,
    `  <link rel="self" type="application/atom+xml" href="${xml(self)}"/>`,
    `  <link rel="alternate" type="text/html" href="${xml(base)}/"/>`,
    `  <updated>${updated}</updated>`,
    '  <generator>PkgForge</generator>',
    ...entries,
    '</feed>',
    '',
  ].join('\n');
}

const Params = Type.Object({ name: Type.String({ maxLength: 50, pattern: SAFE_NAME_PATTERN.source }) });

/** Atom feeds of finished jobs, per bucket and per submitter, for feed readers and chat bots. */
export function feedRoutes(ctx: WebContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    requireReader(ctx, app);
    for (const [kind, key, what] of [
      ['buckets', 'bucket', 'bucket'],
      ['submitters', 'submitter', 'submitter'],
    ] as const)
      app.get(`/feeds/${kind}/:name`, { schema: { hide: true, params: Params } }, async (req, reply) => {
        const { name } = req.params;
        const jobs = await listFinishedJobs(ctx.registry.db, { [key]: name, limit: 50 });
        // A bucket or submitter with nothing finished yet has an empty feed: readers subscribe early.
        const base = publicBaseUrl(ctx, req);
        return (
          reply
            .type('application/atom+xml; charset=utf-8')
            .header('x-content-type-options', 'nosniff')
            // Its links name the host asked for (without public_url): a shared cache must not mix them.
            .header('vary', 'host')
            .send(
              atomFeed(
                base,
                `${base}/feeds/${kind}/${encodeURIComponent(name)}`,
                `PkgForge: finished jobs of ${what} ${name}`,
                jobs,
              ),
            )
        );
      });
  };
}
