import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readRpmHeader, RpmTag } from '../../sources/rpm-header.ts';
import { validateSrpm } from '../../sources/srpm.ts';
import { captureCommand, runCommand } from '../../util/child.ts';
import { logLine, PhaseFailure, type PhaseCommand, type TaskRun } from '../task-run.ts';

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
    const top = join(task.workDir, 'rpmbuild');
    for (const d of ['BUILD', 'BUILDROOT', 'RPMS', 'SOURCES', 'SPECS', 'SRPMS']) await mkdir(join(top, d), { recursive: true });
    const sources = await Promise.all(task.manifest.packages.map(async (p) => ({ file: p.file, path: join(task.acceptedDir, p.file), info: await validateSrpm(join(task.acceptedDir, p.file)) })));
    const jobSourceNames = new Set(sources.map((s) => s.info.name));
    const built = new Set<string>(); // source names built in this task
    const provided = new Set<string>(); // names and provides of binary packages built in this task
    const hostHasRpmDb = (await captureCommand('rpm', ['-qa', '--qf', '%{NAME}\\n'])).stdout.trim().length > 0;

    let todo = sources;
    let failed: typeof sources = [];
    for (;;) {
      failed = [];
      for (const s of todo) {
        if (task.signal.aborted) throw new PhaseFailure('the build was stopped');
        const missing = [];
        for (const req of s.info.buildRequires) {
          if (provided.has(req)) continue;
          if (jobSourceNames.has(req) && !built.has(req)) missing.push(`${req} (built later in this job)`);
          else if (!jobSourceNames.has(req) && hostHasRpmDb && (await captureCommand('rpm', ['-q', '--whatprovides', req])).code !== 0) missing.push(req);
        }
        if (missing.length > 0) {
          logLine(task, `${s.file}: cannot build yet, missing build dependencies: ${missing.join(', ')}`);
          failed.push(s);
        } else if (await this.buildOne(task, top, s.path, s.file)) {
          built.add(s.info.name);
          task.info.success.push(s.file);
          for (const p of await this.newProducts(top, task)) {
            const h = await readRpmHeader(p).catch(() => null);
            if (!h) continue;
            provided.add(h.header.string(RpmTag.name) ?? '');
            for (const prov of h.header.strings(RpmTag.provideName)) provided.add(prov);
          }
          continue;
        } else {
          failed.push(s);
        }
        if (task.errorPolicy === 'immediate') {
          logLine(task, 'giving up: the error policy is to fail immediately');
          task.info.failures = failed.map((f) => f.file);
          throw new PhaseFailure(`Failed to build ${failed.map((f) => f.file).join(', ')} (error policy: immediate)`);
        }
      }
      if (failed.length === 0) break;
      if (failed.length === todo.length) break; // no progress in this pass: give up
      logLine(task, `retrying ${failed.map((f) => f.file).join(', ')} now that other packages are built`);
      todo = failed;
    }
    task.info.failures = failed.map((f) => f.file);
    if (failed.length > 0) throw new PhaseFailure(`Failed to build ${failed.map((f) => f.file).join(', ')}`);
  }

  private seen = new Set<string>();

  /** Binary and source RPMs that appeared since the last call, recorded as products. */
  private async newProducts(top: string, task: TaskRun): Promise<string[]> {
    const fresh: string[] = [];
    for (const dir of ['RPMS', 'SRPMS']) {
      for (const name of await readdir(join(top, dir)).catch(() => [] as string[])) {
        const path = join(top, dir, name);
        if (!name.endsWith('.rpm') || this.seen.has(path)) continue;
        this.seen.add(path);
        fresh.push(path);
        task.info.products.push(path);
      }
    }
    return fresh;
  }

  private async buildOne(task: TaskRun, top: string, path: string, file: string): Promise<boolean> {
    logLine(task, `building ${file}`);
    const r = await runCommand(
      'rpmbuild',
      ['--rebuild', '--nodeps', '--define', `_topdir ${top}`, '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm', '--define', `_tmppath ${join(task.workDir, 'tmp')}`, path],
      { output: task.log, timeoutMs: task.timeoutSeconds * 1000, signal: task.signal, cwd: task.workDir },
    );
    if (r.timedOut) logLine(task, `${file}: killed after the build timeout of ${task.timeoutSeconds} s`);
    else if (r.aborted) logLine(task, `${file}: build stopped`);
    else if (r.error) logLine(task, `${file}: could not run rpmbuild: ${r.error.message}`);
    else if (r.code !== 0) logLine(task, `${file}: rpmbuild failed with exit code ${r.code}`);
    else logLine(task, `${file}: built`);
    if (r.timedOut) throw new PhaseFailure(`Failed to build ${file}: killed after the build timeout of ${task.timeoutSeconds} s`);
    return !r.timedOut && !r.aborted && !r.error && r.code === 0;
  }
}
