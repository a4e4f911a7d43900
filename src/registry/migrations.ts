import { Kysely, Migrator, sql, type ColumnDefinitionBuilder, type Migration, type MigrationProvider } from 'kysely';
import { JOB_STATUSES, PACKAGE_FAMILIES, TASK_STATUSES } from '../core/terms.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import type { RegistryCapabilities } from './capabilities.ts';

/**
 * Numbered migrations, in code so they ship inside the program. Never edit one that has been
 * released: add the next number.
 */
function migrations(caps: RegistryCapabilities): Record<string, Migration> {
  // SQLite needs AUTOINCREMENT so ids are never reused; PostgreSQL's serial is that already.
  const idColumn = (c: ColumnDefinitionBuilder) =>
    caps.idColumn === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey();
  const inList = (values: readonly string[]) => sql.raw(values.map((v) => `'${v}'`).join(', '));
  return {
    '0001-initial': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('platforms')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('name', 'varchar(20)', (c) => c.notNull())
          .addColumn('arch', 'varchar(20)', (c) => c.notNull())
          .addColumn('active', 'smallint', (c) => c.notNull().defaultTo(0))
          .addColumn('auto', 'smallint', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('platforms_name_arch', ['name', 'arch'])
          .execute();
        await db.schema
          .createTable('jobs')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('uuid', 'varchar(50)', (c) =>
            c
              .notNull()
              .unique()
              .check(sql`length(uuid) between 1 and 50`),
          )
          .addColumn('bucket', 'varchar(50)', (c) => c.notNull())
          .addColumn('submitter', 'varchar(50)')
          .addColumn('status', 'varchar(20)', (c) =>
            c
              .notNull()
              .defaultTo('incoming')
              .check(sql`status in (${inList(JOB_STATUSES)})`),
          )
          .addColumn('reason', 'text')
          .addColumn('size', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('platforms', 'text', (c) => c.notNull())
          .addColumn('archs', 'text', (c) => c.notNull())
          .addColumn('report', 'text', (c) => c.notNull())
          .addColumn('submitted_at', 'bigint')
          .addColumn('incoming_entry', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('modified_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('jobs_status').on('jobs').columns(['status']).execute();
        await db.schema.createIndex('jobs_submitter').on('jobs').columns(['submitter']).execute();
        await db.schema
          .createTable('job_packages')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
          .addColumn('position', 'integer', (c) => c.notNull())
          .addColumn('file', 'text', (c) => c.notNull())
          .addColumn('type', 'varchar(20)', (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('sha1sum', 'varchar(40)', (c) => c.notNull())
          .addColumn('sha256sum', 'varchar(64)')
          .addColumn('name', 'text')
          .addColumn('version', 'text')
          .addColumn('release', 'text')
          .addUniqueConstraint('job_packages_position', ['job_id', 'position'])
          .execute();
        await db.schema
          .createTable('tasks')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('job_id', 'integer', (c) => c.notNull().references('jobs.id').onDelete('cascade'))
          .addColumn('platform_id', 'integer', (c) => c.notNull().references('platforms.id'))
          .addColumn('status', 'varchar(20)', (c) =>
            c
              .notNull()
              .defaultTo('needs build')
              .check(sql`status in (${inList(TASK_STATUSES)})`),
          )
          .addColumn('reason', 'text')
          .addColumn('queued_at', 'bigint', (c) => c.notNull())
          .addColumn('attempt', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('modified_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('tasks_job_platform', ['job_id', 'platform_id'])
          .execute();
        // The claim reads the oldest waiting task of one platform: this index serves it.
        await db.schema
          .createIndex('tasks_queue')
          .on('tasks')
          .columns(['platform_id', 'status', 'queued_at', 'id'])
          .execute();
        await db.schema
          .createTable('builders')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('name', 'varchar(50)', (c) => c.notNull().unique())
          .addColumn('platform_id', 'integer', (c) => c.notNull().references('platforms.id'))
          // Not UNIQUE: the original's unique `current` made a requeued task unclaimable by another builder.
          .addColumn('current_task_id', 'integer', (c) => c.references('tasks.id').onDelete('set null'))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('modified_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('attempts')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('task_id', 'integer', (c) => c.notNull().references('tasks.id').onDelete('cascade'))
          .addColumn('number', 'integer', (c) => c.notNull())
          .addColumn('builder', 'varchar(50)', (c) => c.notNull())
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('ended_at', 'bigint')
          .addColumn('outcome', 'varchar(20)')
          .addColumn('reason', 'text')
          .addUniqueConstraint('attempts_task_number', ['task_id', 'number'])
          .execute();
      },
    },
    '0002-leases': {
      async up(db: Kysely<any>) {
        // Who holds a building task, and until when: a lease renewed by the builder's heartbeat.
        await db.schema
          .alterTable('tasks')
          .addColumn('builder_id', 'integer', (c) => c.references('builders.id').onDelete('set null'))
          .execute();
        await db.schema.alterTable('tasks').addColumn('lease_expires_at', 'bigint').execute();
        await db.schema.createIndex('tasks_leases').on('tasks').columns(['status', 'lease_expires_at']).execute();
        await db.schema.alterTable('builders').addColumn('host', 'text').execute();
        await db.schema.alterTable('builders').addColumn('last_heartbeat_at', 'bigint').execute();
        // Set when the daemon's preflight fails (a missing tool): the builder cannot build, and says why.
        await db.schema.alterTable('builders').addColumn('unable_reason', 'text').execute();
        await db.schema.alterTable('attempts').addColumn('log_dir', 'text').execute();
      },
    },
    '0003-entry-identity': {
      async up(db: Kysely<any>) {
        // The incoming directory's device, inode and birth time: a processor restarted after a crash knows its
        // own entry from a new submission reusing the directory name, whatever the clocks say.
        await db.schema.alterTable('jobs').addColumn('incoming_inode', 'text').execute();
      },
    },
    '0004-tokens': {
      async up(db: Kysely<any>) {
        // API tokens: only a hash is kept; the token itself is shown once, when it is made.
        await db.schema
          .createTable('tokens')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('user', 'varchar(50)', (c) => c.notNull())
          .addColumn('hash', 'varchar(64)', (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('last_used_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .execute();
      },
    },
    '0005-task-status-index': {
      async up(db: Kysely<any>) {
        // Counting tasks by status (queue page, metrics) without scanning every task.
        await db.schema.createIndex('tasks_status_platform').on('tasks').columns(['status', 'platform_id']).execute();
      },
    },
    '0006-builder-sandbox': {
      async up(db: Kysely<any>) {
        // How the builder's daemon confines builds (`bwrap`, or `none` when an admin turned the sandbox off), as it said at start.
        await db.schema.alterTable('builders').addColumn('sandbox', 'varchar(20)').execute();
      },
    },
    '0007-task-accepted-attempt': {
      async up(db: Kysely<any>) {
        // Publishing follows the registry's acceptance of one attempt's build (buildd/daemon.ts).
        await db.schema.alterTable('tasks').addColumn('accepted_attempt', 'integer').execute();
      },
    },
    '0008-platform-family': {
      async up(db: Kysely<any>) {
        // Every platform until now built source RPMs: they stay `rpm`.
        await db.schema
          .alterTable('platforms')
          .addColumn('family', 'varchar(10)', (c) =>
            c
              .notNull()
              .defaultTo('rpm')
              .check(sql`family in (${inList(PACKAGE_FAMILIES)})`),
          )
          .execute();
      },
    },
    '0009-job-task-counters': {
      async up(db: Kysely<any>) {
        // A job keeps the count of its tasks and of those that ended each way, so a task's finish
        // updates the job's status in the same statement (registry/job-counters.ts) instead of a
        // recount of the job's tasks in a transaction of its own.
        for (const column of ['tasks_total', 'tasks_success', 'tasks_fail', 'tasks_cancelled'])
          await db.schema
            .alterTable('jobs')
            .addColumn(column, 'integer', (c) => c.notNull().defaultTo(0))
            .execute();
        const count = (status: string | null) =>
          sql`(select count(*) from tasks where tasks.job_id = jobs.id${status === null ? sql`` : sql` and tasks.status = ${sql.lit(status)}`})`;
        await sql`update jobs set tasks_total = ${count(null)}, tasks_success = ${count('success')},
          tasks_fail = ${count('fail')}, tasks_cancelled = ${count('cancelled')}`.execute(db);
      },
    },
    '0010-refused-entries': {
      async up(db: Kysely<any>) {
        // Incoming entries refused before a job record could exist (no loadable manifest, an id
        // already used by another job), so their submitters find out why.
        await db.schema
          .createTable('refused_entries')
          .addColumn('id', caps.idColumn, idColumn)
          .addColumn('entry', 'varchar(300)', (c) => c.notNull())
          // dev:inode:birth of the directory: a pass that stopped before removing it records it once.
          .addColumn('entry_key', 'varchar(100)', (c) => c.notNull().unique())
          .addColumn('submitter', 'varchar(50)')
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('refused_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('refused_entries_submitter')
          .on('refused_entries')
          .columns(['submitter', 'id'])
          .execute();
      },
    },
    '0011-package-names': {
      async up(db: Kysely<any>) {
        // A package's builds (its page, the jobs page's search) are found by its name.
        await db.schema.createIndex('job_packages_name').on('job_packages').columns(['name', 'job_id']).execute();
      },
    },
    '0012-history-indexes': {
      async up(db: Kysely<any>) {
        // The queue page's last 24 hours: tasks that changed since, builds that ended since.
        await db.schema.createIndex('tasks_modified').on('tasks').columns(['modified_at']).execute();
        await db.schema.createIndex('attempts_ended').on('attempts').columns(['ended_at']).execute();
      },
    },
    '0013-builder-stopped': {
      async up(db: Kysely<any>) {
        // A daemon that stops cleanly says so: its builder shows as stopped, not as running until its
        // last heartbeat grows old (core/builder-health.ts).
        await db.schema.alterTable('builders').addColumn('stopped_at', 'bigint').execute();
      },
    },
    '0014-builder-tokens': {
      async up(db: Kysely<any>) {
        // A builder token acts for one builder only (claims for its platform, reports on its own
        // attempts); it is never a user's token. Remote build hosts hold one instead of database credentials.
        await db.schema
          .alterTable('tokens')
          .addColumn('builder_id', 'integer', (c) => c.references('builders.id').onDelete('cascade'))
          .execute();
      },
    },
  };
}

class InCodeMigrations implements MigrationProvider {
  constructor(private readonly caps: RegistryCapabilities) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.caps);
  }
}

/** Brings the registry's schema up to date. Safe to run from several processes at once. */
export async function migrateRegistry(db: Kysely<any>, caps: RegistryCapabilities): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: new InCodeMigrations(caps),
    migrationTableName: 'pkgforge_migrations',
    migrationLockTableName: 'pkgforge_migrations_lock',
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    throw new PkgForgeError(
      ErrorCode.registry,
      `Failed to migrate the registry: ${(error as Error).message ?? String(error)}`,
      { cause: error },
    );
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** The migrations this program has that the registry lacks; throws when it has no schema at all. */
async function missingMigrations(db: Kysely<any>, caps: RegistryCapabilities): Promise<string[]> {
  const applied = new Set(
    (await sql<{ name: string }>`select name from pkgforge_migrations`.execute(db)).rows.map((r) => r.name),
  );
  return Object.keys(migrations(caps)).filter((m) => !applied.has(m));
}

/**
 * Whether every migration has been applied: one read, so a command that finds the schema current
 * (nearly every start) skips the migrator's locking and bookkeeping. False when the registry has
 * no schema yet.
 */
export async function schemaIsCurrent(db: Kysely<any>, caps: RegistryCapabilities): Promise<boolean> {
  return missingMigrations(db, caps).then(
    (missing) => missing.length === 0,
    () => false,
  );
}

/**
 * Checks, without writing, that the registry's schema is the one this program expects: for
 * processes whose database role may only read (the web server), which cannot run migrations.
 */
export async function assertSchemaCurrent(db: Kysely<any>, caps: RegistryCapabilities): Promise<void> {
  let missing: string[];
  try {
    missing = await missingMigrations(db, caps);
  } catch (err) {
    throw new PkgForgeError(
      ErrorCode.registry,
      `The registry has no PkgForge schema yet (run \`pkgforge init\` as the registry's owner): ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (missing.length > 0) {
    throw new PkgForgeError(
      ErrorCode.registry,
      `The registry's schema is older than this PkgForge (missing ${missing.join(', ')}); run \`pkgforge init\` as the registry's owner`,
    );
  }
}
