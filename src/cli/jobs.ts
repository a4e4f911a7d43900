import type { Command } from 'commander';
import { parseInstance } from '../core/builder-health.ts';
import { isJobStatus, JOB_STATUSES } from '../core/terms.ts';
import { listAttempts } from '../registry/attempts.ts';
import { getJobDetail, listJobs, type Job } from '../registry/jobs.ts';
import { listRefusedEntries } from '../registry/refused-entries.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { collect, configFor, printJson, withRegistry, type CommonOptions } from './context.ts';

import { displayTime as time, isoTime } from '../core/time.ts';
import { formatTable } from './table.ts';

function jobJson(job: Job) {
  const { incomingEntry: _entry, incomingInode: _inode, ...rest } = job;
  return {
    ...rest,
    submittedAt: job.submittedAt === null ? null : new Date(job.submittedAt).toISOString(),
    createdAt: new Date(job.createdAt).toISOString(),
    modifiedAt: new Date(job.modifiedAt).toISOString(),
  };
}

export function registerJobCommands(program: Command): void {
  program
    .command('jobs')
    .description('list jobs, newest first')
    .option('-u, --submitter <user>', 'only jobs of this submitter')
    .option('-s, --status <status>', `only jobs in this status (${JOB_STATUSES.join(', ')})`)
    .option('-B, --bucket <bucket>', 'only jobs for this bucket')
    .option('--limit <n>', 'at most this many jobs', '50')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (opts: CommonOptions & { submitter?: string; status?: string; bucket?: string; limit: string }) => {
      if (opts.status !== undefined && !isJobStatus(opts.status)) {
        throw new PkgForgeError(ErrorCode.usage, `Unknown status '${opts.status}'; one of: ${JOB_STATUSES.join(', ')}`);
      }
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1)
        throw new PkgForgeError(ErrorCode.usage, '--limit takes a whole number above 0');
      const config = configFor([], opts);
      const { jobs, refused } = await withRegistry(config, async ({ db }) => ({
        jobs: await listJobs(db, {
          limit,
          ...(opts.submitter && { submitter: opts.submitter }),
          ...(opts.status && { status: opts.status as Job['status'] }),
          ...(opts.bucket && { bucket: opts.bucket }),
        }),
        // Entries refused before they became jobs are invalid, in no bucket.
        refused:
          opts.bucket === undefined && (opts.status === undefined || opts.status === 'invalid')
            ? (await listRefusedEntries(db, { limit, ...(opts.submitter && { submitter: opts.submitter }) })).entries
            : [],
      }));
      const listed = [
        ...jobs.map((j) => ({ at: j.submittedAt ?? j.createdAt, job: j, refused: null })),
        ...refused.map((r) => ({ at: r.refusedAt, job: null, refused: r })),
      ]
        .sort((a, b) => b.at - a.at)
        .slice(0, limit);
      if (opts.json)
        return printJson(
          listed.map((l) =>
            l.job
              ? jobJson(l.job)
              : {
                  refusedEntry: l.refused!.entry,
                  status: 'invalid',
                  submitter: l.refused!.submitter,
                  reason: l.refused!.reason,
                  refusedAt: isoTime(l.refused!.refusedAt),
                },
          ),
        );
      if (listed.length === 0) return console.log('No jobs');
      const rows = listed.map(({ job: j, refused: r }) =>
        j
          ? [j.id, j.status, j.bucket, j.submitter ?? '-', time(j.submittedAt ?? j.createdAt), j.reason ?? '']
          : [`(entry ${r!.entry})`, 'invalid', '-', r!.submitter ?? '-', time(r!.refusedAt), r!.reason],
      );
      for (const l of formatTable(['ID', 'STATUS', 'BUCKET', 'SUBMITTER', 'SUBMITTED', 'REASON'], rows)) console.log(l);
    });

  const job = program.command('job').description('look at one job');
  job
    .command('show')
    .description('a job with its status, reason, packages and tasks')
    .argument('<id>', 'the job id')
    .option('-c, --configfile <file>', 'configuration file (repeatable; +FILE appends)', collect)
    .option('--json', 'print the result as JSON')
    .action(async (id: string, opts: CommonOptions) => {
      const config = configFor([], opts);
      const found = await withRegistry(config, async ({ db }) => {
        const detail = await getJobDetail(db, id);
        return detail && { detail, attempts: await Promise.all(detail.tasks.map((t) => listAttempts(db, t.id))) };
      });
      if (!found) throw new PkgForgeError(ErrorCode.notFound, `There is no job ${id}`);
      const { detail, attempts } = found;
      const iso = isoTime;
      if (opts.json) {
        return printJson({
          ...jobJson(detail),
          packages: detail.packages,
          tasks: detail.tasks.map(({ queuedAt, modifiedAt, ...t }, i) => ({
            ...t,
            queuedAt: iso(queuedAt),
            modifiedAt: iso(modifiedAt),
            attempts: attempts[i]!.map((a) => ({ ...a, startedAt: iso(a.startedAt), endedAt: iso(a.endedAt) })),
          })),
        });
      }
      console.log(`Job ${detail.id}`);
      console.log(`  status:     ${detail.status}${detail.reason ? ` (${detail.reason})` : ''}`);
      console.log(`  bucket:     ${detail.bucket}`);
      console.log(`  submitter:  ${detail.submitter ?? '-'}`);
      console.log(`  submitted:  ${time(detail.submittedAt)}`);
      console.log(`  platforms:  ${detail.platforms.join(', ')}    archs: ${detail.archs.join(', ')}`);
      if (detail.report.length > 0) console.log(`  report:     ${detail.report.join(', ')}`);
      console.log(`  packages (${detail.packages.length}, ${detail.size} bytes):`);
      for (const p of detail.packages)
        console.log(`    ${p.position + 1}. ${p.file}${p.name ? `  (${p.name} ${p.version}-${p.release})` : ''}`);
      console.log(`  tasks (${detail.tasks.length}):`);
      if (detail.tasks.length === 0) console.log("    none: no active platform matches the job's filters");
      detail.tasks.forEach((t, i) => {
        console.log(`    ${`${t.platform}/${t.arch}`.padEnd(20)} ${t.status}${t.reason ? ` (${t.reason})` : ''}`);
        for (const a of attempts[i]!) {
          const how = a.endedAt === null ? 'building' : `${a.outcome}${a.reason ? `: ${a.reason}` : ''}`;
          console.log(
            `      attempt ${a.number} by ${a.builder} on ${parseInstance(a.host).host}, ${time(a.startedAt)} to ${a.endedAt === null ? 'now' : time(a.endedAt)}: ${how}`,
          );
        }
      });
    });
}
