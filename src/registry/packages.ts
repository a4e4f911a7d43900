import type { Kysely } from 'kysely';
import type { JobStatus } from '../core/terms.ts';
import { tasksOfJobs, type JobTask } from './jobs.ts';
import type { Database } from './schema.ts';

/** One build of a source package: the job that carried it, at its version, with its tasks. */
export interface PackageBuild {
  job: string;
  version: string | null;
  release: string | null;
  file: string;
  bucket: string;
  submitter: string | null;
  status: JobStatus;
  reason: string | null;
  submittedAt: number | null;
  createdAt: number;
  modifiedAt: number;
  tasks: JobTask[];
}

/**
 * Every build of the source package `name`, newest first, a page at a time (`before`: the cursor a
 * page gave), each with its tasks; a job carrying the package twice counts once, at its first.
 */
export async function listPackageBuilds(
  db: Kysely<Database>,
  name: string,
  page: { limit?: number; before?: number } = {},
): Promise<{ builds: PackageBuild[]; next: number | null }> {
  const limit = page.limit ?? 50;
  let q = db
    .selectFrom('job_packages')
    .innerJoin('jobs', 'jobs.id', 'job_packages.job_id')
    .select([
      'jobs.id',
      'jobs.uuid',
      'jobs.bucket',
      'jobs.submitter',
      'jobs.status',
      'jobs.reason',
      'jobs.submitted_at',
      'jobs.created_at',
      'jobs.modified_at',
      'job_packages.version',
      'job_packages.release',
      'job_packages.file',
      'job_packages.position',
    ])
    .where('job_packages.name', '=', name);
  if (page.before !== undefined) q = q.where('jobs.id', '<', page.before);
  const rows = await q
    .orderBy('jobs.id', 'desc')
    .orderBy('job_packages.position')
    .limit(limit + 1)
    .execute();
  const seen = new Set<number>();
  const jobs = rows.filter((r) => !seen.has(r.id) && seen.add(r.id));
  const shown = jobs.slice(0, limit);
  const tasks = await tasksOfJobs(
    db,
    shown.map((r) => r.id),
  );
  return {
    builds: shown.map((r) => ({
      job: r.uuid,
      version: r.version,
      release: r.release,
      file: r.file,
      bucket: r.bucket,
      submitter: r.submitter,
      status: r.status,
      reason: r.reason,
      submittedAt: r.submitted_at,
      createdAt: r.created_at,
      modifiedAt: r.modified_at,
      tasks: tasks.get(r.id) ?? [],
    })),
    next: jobs.length > limit ? shown[shown.length - 1]!.id : null,
  };
}
