import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCommand } from '../../util/child.ts';
import { takeRpmProduct } from '../products.ts';
import { buildInOrder } from '../../core/build-order.ts';
import { logLine, PhaseFailure, type PhaseCommand, type TaskRun } from '../phases.ts';

/**
 * mock needs root for its chroots, so it cannot run inside the bubblewrap sandbox: a mock builder
 * must be configured with `sandbox: none` and relies on mock's own isolation (which its
 * maintainers say is not a security boundary; see docs/security.md).
 *
 * Builds each source RPM in a mock chroot named `<platform>-<bucket>-<arch>` (a config in
 * /etc/mock, as the original required), with the package timeout passed to mock. Packages built
 * earlier in the job are made available to later ones: every result goes into one directory per
 * attempt, createrepo_c turns it into a repository after each build, and mock is given it with
 * --addrepo. The `retry` policy is the same as for rpmbuild.
 */
export class MockBuilder implements PhaseCommand {
  readonly name = 'mock';
  readonly tools = ['mock', 'createrepo_c'];
  constructor(private readonly params: { root?: string }) {}

  async run(task: TaskRun): Promise<void> {
    const root = (this.params.root ?? '{platform}-{bucket}-{arch}')
      .replaceAll('{platform}', task.claim.platform)
      .replaceAll('{bucket}', task.claim.bucket)
      .replaceAll('{arch}', task.claim.arch);
    const localRepo = join(task.workspace.root, 'repo');
    await mkdir(localRepo, { recursive: true });
    await this.refreshRepo(task, localRepo);
    const { failed, gaveUpEarly } = await buildInOrder(
      task.manifest.packages.map((p) => p.file),
      async (file) => {
        if (task.signal.aborted) throw new PhaseFailure('the build was stopped');
        const resultDir = join(task.workspace.root, 'results', file);
        await mkdir(resultDir, { recursive: true });
        logLine(task, `building ${file} in mock root ${root}`);
        const r = await runCommand(
          'mock',
          [
            '--root',
            root,
            '--resultdir',
            resultDir,
            '--addrepo',
            `file://${localRepo}`,
            '--rpmbuild_timeout',
            String(task.timeoutSeconds),
            '--rebuild',
            join(task.acceptedDir, file),
          ],
          {
            output: task.log,
            signal: task.signal,
            timeoutMs: (task.timeoutSeconds + 600) * 1000,
            cwd: task.workspace.root,
          },
        );
        if (r.code !== 0 || r.error) {
          logLine(
            task,
            `${file}: mock failed (${r.error?.message ?? (r.timedOut ? 'timed out' : `exit code ${r.code}`)})`,
          );
          return false;
        }
        logLine(task, `${file}: built`);
        task.info.success.push(file);
        for (const name of await readdir(resultDir)) {
          if (!name.endsWith('.rpm')) continue;
          // mock's results are the build's output: checked and copied like any product.
          const taken = await takeRpmProduct(
            join(resultDir, name),
            task.workspace.products.host,
            name.endsWith('.src.rpm') ? 'source' : 'binary',
            task.sandbox.limits.product,
          );
          task.info.products.push(taken);
          if (!name.endsWith('.src.rpm')) await copyFile(taken, join(localRepo, name));
        }
        await this.refreshRepo(task, localRepo);
        return true;
      },
      {
        errorPolicy: task.errorPolicy,
        onRetry: (again) => logLine(task, `retrying ${again.join(', ')} now that other packages are built`),
      },
    );
    task.info.failures = failed;
    if (gaveUpEarly)
      throw new PhaseFailure(`Failed to build ${failed.join(', ')} in mock root ${root} (error policy: immediate)`);
    if (failed.length > 0) throw new PhaseFailure(`Failed to build ${failed.join(', ')} in mock root ${root}`);
  }

  private async refreshRepo(task: TaskRun, repo: string): Promise<void> {
    const r = await runCommand('createrepo_c', ['--quiet', '--update', repo], {
      output: task.log,
      signal: task.signal,
    });
    if (r.error || r.code !== 0) throw new PhaseFailure(`Failed to index the job's local repository ${repo}`);
  }
}
