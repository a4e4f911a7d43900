import Type from 'typebox';
import { JOB_STATUSES, TASK_STATUSES, type JobStatus, type TaskStatus } from '../core/terms.ts';

/** The API's shapes, in one place: they validate requests and document responses (OpenAPI). */
const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const JobStatusSchema = Type.Unsafe<JobStatus>({ type: 'string', enum: [...JOB_STATUSES] });
const TaskStatusSchema = Type.Unsafe<TaskStatus>({ type: 'string', enum: [...TASK_STATUSES] });

export const JobSummary = Type.Object({
  id: Type.String(),
  status: JobStatusSchema,
  reason: Type.Union([Type.String(), Type.Null()]),
  bucket: Type.String(),
  submitter: Type.Union([Type.String(), Type.Null()]),
  platforms: Type.Array(Type.String()),
  archs: Type.Array(Type.String()),
  size: Type.Integer(),
  submittedAt: Time,
  modifiedAt: Time,
  url: Type.String({ description: 'this job in the API' }),
});

export const JobList = Type.Object({
  jobs: Type.Array(JobSummary),
  next: Type.Union([Type.String(), Type.Null()], { description: 'the cursor of the next (older) page, for ?before=' }),
});

export const JobListQuery = Type.Object({
  submitter: Type.Optional(Type.String({ maxLength: 50 })),
  status: Type.Optional(JobStatusSchema),
  bucket: Type.Optional(Type.String({ maxLength: 50 })),
  platform: Type.Optional(Type.String({ maxLength: 20 })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
});

export const Attempt = Type.Object({
  number: Type.Integer(),
  builder: Type.String(),
  host: Type.String(),
  startedAt: Time,
  endedAt: Time,
  outcome: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
});

export const TaskSummary = Type.Object({
  platform: Type.String(),
  arch: Type.String(),
  status: TaskStatusSchema,
  reason: Type.Union([Type.String(), Type.Null()]),
  attempt: Type.Integer(),
  queuedAt: Time,
  modifiedAt: Time,
});

export const JobDetail = Type.Object({
  ...JobSummary.properties,
  report: Type.Array(Type.String()),
  packages: Type.Array(
    Type.Object({
      position: Type.Integer(),
      file: Type.String(),
      type: Type.String(),
      size: Type.Integer(),
      sha1sum: Type.String(),
      sha256sum: Type.Union([Type.String(), Type.Null()]),
      name: Type.Union([Type.String(), Type.Null()]),
      version: Type.Union([Type.String(), Type.Null()]),
      release: Type.Union([Type.String(), Type.Null()]),
    }),
  ),
  tasks: Type.Array(TaskSummary),
  warnings: Type.Array(Type.String(), { description: 'platforms or archs the job names that are unknown or inactive' }),
});

export const TaskDetail = Type.Object({
  job: Type.String(),
  ...TaskSummary.properties,
  attempts: Type.Array(Attempt),
  files: Type.Array(Type.Object({ name: Type.String(), size: Type.Integer() }), { description: 'files in the task results directory' }),
});

export const Platform = Type.Object({ name: Type.String(), arch: Type.String(), active: Type.Boolean(), auto: Type.Boolean() });

export const Builder = Type.Object({
  name: Type.String(),
  platform: Type.String(),
  arch: Type.String(),
  host: Type.Union([Type.String(), Type.Null()]),
  currentTask: Type.Union([Type.Integer(), Type.Null()]),
  lastHeartbeat: Time,
  healthy: Type.Boolean(),
  unableToBuild: Type.Union([Type.String(), Type.Null()]),
});

export const Queue = Type.Object({
  platform: Type.String(),
  arch: Type.String(),
  active: Type.Boolean(),
  building: Type.Integer(),
  builders: Type.Object({ total: Type.Integer(), healthy: Type.Integer(), busy: Type.Integer(), unable: Type.Integer() }),
  why: Type.Union([Type.String(), Type.Null()]),
  waiting: Type.Array(Type.Object({ position: Type.Integer(), job: Type.String(), bucket: Type.String(), submitter: Type.Union([Type.String(), Type.Null()]), queuedAt: Time, nextAttempt: Type.Integer() })),
});

export const ErrorReply = Type.Object({ statusCode: Type.Integer(), code: Type.String(), error: Type.String(), message: Type.String() });
