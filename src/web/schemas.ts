import Type from 'typebox';
import { JOB_STATUSES, TASK_STATUSES, type JobStatus, type TaskStatus } from '../core/terms.ts';
import { BUILDER_STATES, type BuilderState } from '../core/builder-health.ts';

/** The API's shapes, in one place: they validate requests and document responses (OpenAPI). */

/**
 * A nullable string as one JSON-schema type (`["string", "null"]`) rather than a union: the
 * response serializer handles it directly, where a union made it run a validator (with format
 * checks) on every value of every response.
 */
const NullableString = (options: Record<string, unknown> = {}) =>
  Type.Unsafe<string | null>({ type: ['string', 'null'], ...options });
const Time = NullableString({ format: 'date-time' });
/** Milliseconds, or null where there is no such duration (yet). */
const Ms = (description: string) => Type.Unsafe<number | null>({ type: ['integer', 'null'], description });
const JobStatusSchema = Type.Unsafe<JobStatus>({ type: 'string', enum: [...JOB_STATUSES] });
const TaskStatusSchema = Type.Unsafe<TaskStatus>({ type: 'string', enum: [...TASK_STATUSES] });

export const JobSummary = Type.Object({
  id: Type.String(),
  status: JobStatusSchema,
  reason: NullableString(),
  bucket: Type.String(),
  submitter: NullableString(),
  platforms: Type.Array(Type.String()),
  archs: Type.Array(Type.String()),
  size: Type.Integer(),
  submittedAt: Time,
  modifiedAt: Time,
  url: Type.String({ description: 'this job in the API' }),
});

export const JobList = Type.Object({
  jobs: Type.Array(JobSummary),
  next: NullableString({ description: 'the cursor of the next (older) page, for ?before=' }),
});

export const JobListQuery = Type.Object({
  submitter: Type.Optional(Type.String({ maxLength: 50 })),
  package: Type.Optional(Type.String({ maxLength: 100 })),
  status: Type.Optional(JobStatusSchema),
  bucket: Type.Optional(Type.String({ maxLength: 50 })),
  platform: Type.Optional(Type.String({ maxLength: 20 })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
});

export const RefusedEntryList = Type.Object({
  entries: Type.Array(
    Type.Object({
      entry: Type.String({ description: "the incoming directory's name, printable" }),
      status: Type.Literal('invalid'),
      submitter: NullableString(),
      reason: Type.String(),
      refusedAt: Time,
    }),
  ),
  next: NullableString({ description: 'the cursor of the next (older) page, for ?before=' }),
});

export const RefusedEntryQuery = Type.Object({
  submitter: Type.Optional(Type.String({ maxLength: 50 })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
});

export const Attempt = Type.Object({
  number: Type.Integer(),
  builder: Type.String(),
  /** The host it ran on, by name, and the daemon's process there. */
  host: Type.String(),
  pid: Type.Unsafe<number | null>({ type: ['integer', 'null'] }),
  startedAt: Time,
  endedAt: Time,
  outcome: NullableString(),
  reason: NullableString(),
  durationMs: Ms('how long it ran (so far, while it builds)'),
});

export const TaskSummary = Type.Object({
  platform: Type.String(),
  arch: Type.String(),
  status: TaskStatusSchema,
  reason: NullableString(),
  attempt: Type.Integer(),
  queuedAt: Time,
  modifiedAt: Time,
  startedAt: Time,
  endedAt: Time,
  queuedMs: Ms('how long it waited for a builder (so far, while it waits)'),
  buildMs: Ms('how long its current attempt built (so far, while it builds)'),
  totalMs: Ms('from queued to ended, once ended'),
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
      sha256sum: NullableString(),
      name: NullableString(),
      version: NullableString(),
      release: NullableString(),
    }),
  ),
  tasks: Type.Array(TaskSummary),
  warnings: Type.Array(Type.String(), { description: 'platforms or archs the job names that are unknown or inactive' }),
});

export const PackageBuilds = Type.Object({
  name: Type.String(),
  builds: Type.Array(
    Type.Object({
      job: Type.String(),
      url: Type.String(),
      version: NullableString(),
      release: NullableString(),
      file: Type.String(),
      bucket: Type.String(),
      submitter: NullableString(),
      status: JobStatusSchema,
      reason: NullableString(),
      submittedAt: Time,
      modifiedAt: Time,
      tookMs: Type.Integer({ description: 'submitted to ended, or so far while tasks wait or build' }),
      ended: Type.Boolean(),
      tasks: Type.Array(
        Type.Object({
          ...TaskSummary.properties,
          log: NullableString({ description: "the current attempt's build log, for a failed task" }),
        }),
      ),
    }),
  ),
  next: NullableString({ description: 'the cursor of the next (older) page, for ?before=' }),
});

/** A source package's name as RPM and Debian allow them. */
export const PackageName = Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]*$' });

export const TaskDetail = Type.Object({
  job: Type.String(),
  ...TaskSummary.properties,
  attempts: Type.Array(Attempt),
  files: Type.Array(Type.Object({ name: Type.String(), size: Type.Integer() }), {
    description: 'files in the task results directory',
  }),
});

export const Platform = Type.Object({
  name: Type.String(),
  arch: Type.String(),
  active: Type.Boolean(),
  auto: Type.Boolean(),
  family: Type.Union([Type.Literal('rpm'), Type.Literal('deb')], {
    description: 'what it builds: RPMs or Debian packages',
  }),
});

export const Builder = Type.Object({
  name: Type.String(),
  platform: Type.String(),
  arch: Type.String(),
  /** core/builder-health.ts BUILDER_STATES. */
  state: Type.Unsafe<BuilderState>({ type: 'string', enum: [...BUILDER_STATES] }),
  unsandboxed: Type.Boolean(),
  /** Building or idle: its daemon runs and can build. */
  healthy: Type.Boolean(),
  /** The host its daemon runs on, by name, and the daemon's process there. */
  host: NullableString(),
  pid: Type.Unsafe<number | null>({ type: ['integer', 'null'] }),
  /** The job being built, by its id, and the attempt. */
  currentJob: Type.Unsafe<{ id: string; attempt: number } | null>({
    type: ['object', 'null'],
    properties: { id: { type: 'string' }, attempt: { type: 'integer' } },
    required: ['id', 'attempt'],
  }),
  lastHeartbeat: Time,
  /** When its daemon stopped cleanly (state `stopped`). */
  stoppedAt: Time,
  unableToBuild: NullableString(),
  /** How builds are confined: `bwrap`, `none` (unsandboxed, an admin's choice), null before its daemon first started. */
  sandbox: NullableString(),
});

export const Queue = Type.Object({
  platform: Type.String(),
  arch: Type.String(),
  active: Type.Boolean(),
  waitingTotal: Type.Integer(),
  building: Type.Integer(),
  builders: Type.Object({
    total: Type.Integer(),
    healthy: Type.Integer(),
    busy: Type.Integer(),
    unable: Type.Integer(),
    stopped: Type.Integer(),
    offline: Type.Integer(),
  }),
  why: NullableString(),
  waiting: Type.Array(
    Type.Object({
      position: Type.Integer(),
      job: Type.String(),
      bucket: Type.String(),
      submitter: NullableString(),
      queuedAt: Time,
      nextAttempt: Type.Integer(),
    }),
  ),
});

export const ErrorReply = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
});
