import { readdir } from 'node:fs/promises';
import { rpmbuildFailureCause } from '../../core/build-failure.ts';
import { keepTail } from '../../util/tail.ts';
import { join } from 'node:path';
import { readRpmHeader, RpmTag } from '../../sources/rpm-header.ts';
import { validateSrpm } from '../../sources/srpm.ts';
import { captureCommand } from '../../util/child.ts';
import { assertRealDirectories, takeRpmProduct } from '../products.ts';
import { buildInOrder } from '../../core/build-order.ts';
import { logLine, PhaseFailure, type PhaseCommand, type TaskRun } from '../phases.ts';

/**
 * Builds the job's source RPMs with `rpmbuild --rebuild` in a private top directory per attempt.
 *
 * Build dependencies without mock: rpmbuild runs with --nodeps, and PkgForge checks each
 * BuildRequires itself. One satisfied by a package built earlier in this task is met; one naming
 * a source package of this job that has not been built yet is not (the package waits, or fails
 * under the `immediate` policy); anything else is checked against the host's rpm database when it
 * has one, and assumed present when it is empty (a non-RPM host such as Debian).
 * With the `retry` policy, failed packages are built again after the others while each pass
 * builds something new (the original's rule).
 */
export class RpmbuildBuilder implements PhaseCommand {
  readonly name = 'rpmbuild';
  readonly tools = ['rpmbuild', 'rpm'];

  async run(task: TaskRun): Promise<void> {
    // The farm's own header reader validates each source outside; everything that parses the
    // spec (rpmbuild, rpm queries with the submitter's names) runs in the sandbox.
    const sources = await Promise.all(
      task.manifest.packages.map(async (p) => ({
        file: p.file,
        path: join(task.acceptedDir, p.file),
        info: await validateSrpm(join(task.acceptedDir, p.file)),
      })),
    );
    const jobSourceNames = new Set(sources.map((s) => s.info.name));
    const built = new Set<string>(); // source names built in this task
    const provided = new Set<string>(); // names and provides of binary packages built in this task
    // The host's rpm database speaks for the host only when it holds its base system: on a Debian
    // host with a few RPMs installed, asking it would call every BuildRequires missing.
    const hostHasRpmDb = (await captureCommand('rpm', ['-q', '--whatprovides', '/bin/sh'])).code === 0;
    if (!hostHasRpmDb) {
      const unchecked = [...new Set(sources.flatMap((s) => s.info.buildRequires))].filter(
        (r) => !jobSourceNames.has(r),
      );
      if (unchecked.length > 0)
        logLine(
          task,
          `BuildRequires not checked (this host's rpm database does not hold its system: nothing in it provides /bin/sh), assumed present: ${unchecked.join(', ')}`,
        );
    }

    const { failed, gaveUpEarly } = await buildInOrder(
      sources,
      async (s) => {
        if (task.signal.aborted) throw new PhaseFailure('the build was stopped');
        const missing = [];
        for (const req of s.info.buildRequires) {
          if (provided.has(req)) continue;
          if (jobSourceNames.has(req) && !built.has(req)) missing.push(`${req} (built later in this job)`);
          else if (!jobSourceNames.has(req) && hostHasRpmDb && !(await this.hostProvides(task, req))) missing.push(req);
        }
        if (missing.length > 0) {
          logLine(task, `${s.file}: cannot build yet, missing build dependencies: ${missing.join(', ')}`);
          this.causes.set(s.file, `missing build dependencies: ${missing.join(', ')}`);
          return false;
        }
        if (!(await this.buildOne(task, s.file))) return false;
        built.add(s.info.name);
        task.info.success.push(s.file);
        for (const p of await this.newProducts(task)) {
          const h = await readRpmHeader(p).catch(() => null);
          if (!h) continue;
          provided.add(h.header.string(RpmTag.name) ?? '');
          for (const prov of h.header.strings(RpmTag.provideName)) provided.add(prov);
        }
        return true;
      },
      {
        errorPolicy: task.errorPolicy,
        onRetry: (again) =>
          logLine(task, `retrying ${again.map((f) => f.file).join(', ')} now that other packages are built`),
      },
    );
    task.info.failures = failed.map((f) => f.file);
    // Each failed package with its cause: what its build said last, or the dependencies it lacked.
    const causes = task.info.failures.map((f) => `${f}: ${this.causes.get(f) ?? 'failed to build'}`).join('; ');
    if (gaveUpEarly) {
      logLine(task, 'giving up: the error policy is to fail immediately');
      throw new PhaseFailure(`${causes} (error policy: immediate)`);
    }
    if (failed.length > 0) throw new PhaseFailure(causes);
  }

  private seen = new Set<string>();
  /** Why each source package last failed to build, by file. */
  private causes = new Map<string, string>();

  /**
   * Binary and source RPMs that appeared since the last call, each checked and copied out of the
   * work directory (products.ts), and recorded as products.
   */
  private async newProducts(task: TaskRun): Promise<string[]> {
    const fresh: string[] = [];
    const top = join(task.workspace.build.host, 'rpmbuild');
    for (const [dir, kind] of [
      ['RPMS', 'binary'],
      ['SRPMS', 'source'],
    ] as const) {
      if (!(await assertRealDirectories(task.workspace.build.host, `rpmbuild/${dir}`))) continue;
      for (const name of await readdir(join(top, dir)).catch(() => [] as string[])) {
        if (this.seen.has(`${dir}/${name}`)) continue;
        this.seen.add(`${dir}/${name}`);
        const taken = await takeRpmProduct(
          join(top, dir, name),
          task.workspace.products.host,
          kind,
          task.sandbox.limits.product,
        );
        fresh.push(taken);
        task.info.products.push(taken);
      }
    }
    return fresh;
  }

  /** Whether the host's rpm database provides `req`, asked inside the sandbox (the name is the submitter's). */
  private async hostProvides(task: TaskRun, req: string): Promise<boolean> {
    const { build } = task.workspace;
    const r = await task.sandbox.run({
      argv: ['rpm', '-q', '--whatprovides', '--', req],
      binds: [build],
      home: build,
      timeoutMs: 60_000,
      signal: task.signal,
      processLog: task.workspace.processLog,
    });
    return r.code === 0;
  }

  private async buildOne(task: TaskRun, file: string): Promise<boolean> {
    logLine(task, `building ${file}`);
    const { build, sources } = task.workspace;
    const box = task.sandbox;
    const top = box.path(build, 'rpmbuild');
    const output = keepTail(task.log);
    const r = await box.run({
      // rpm would try to resolve the sandbox's host name (there is no network) and warn in every log.
      argv: [
        'rpmbuild',
        '--rebuild',
        '--nodeps',
        ...(box.hostname ? ['--define', `_buildhost ${box.hostname}`] : []),
        '--define',
        `_topdir ${top}`,
        '--define',
        '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
        '--define',
        `_tmppath ${box.path(build, 'tmp')}`,
        box.path(sources, file),
      ],
      binds: [sources, build],
      home: build,
      output: output.stream,
      timeoutMs: task.timeoutSeconds * 1000,
      signal: task.signal,
      processLog: task.workspace.processLog,
    });
    if (r.limit) logLine(task, `${file}: the build exceeded ${r.limit}`);
    else if (r.timedOut) logLine(task, `${file}: killed after the build timeout of ${task.timeoutSeconds} s`);
    else if (r.aborted) logLine(task, `${file}: build stopped`);
    else if (r.error) {
      this.causes.set(file, `could not run rpmbuild: ${r.error.message}`);
      logLine(task, `${file}: could not run rpmbuild: ${r.error.message}`);
    } else if (r.code !== 0) {
      const cause = rpmbuildFailureCause(output.tail());
      this.causes.set(file, cause ?? `rpmbuild failed with exit code ${r.code}`);
      logLine(task, `${file}: rpmbuild failed with exit code ${r.code}${cause ? `: ${cause}` : ''}`);
    } else logLine(task, `${file}: built`);
    if (r.limit) throw new PhaseFailure(`${file}: the build exceeded ${r.limit}`);
    if (r.timedOut) throw new PhaseFailure(`${file}: killed after the build timeout of ${task.timeoutSeconds} s`);
    return !r.timedOut && !r.aborted && !r.error && r.code === 0;
  }
}
