import { copyFile, mkdir, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { runCommand } from '../../util/child.ts';
import { logLine, PhaseFailure, type PublishCommand, type AttemptRun } from '../phases.ts';
import { lockRepository } from './repository-lock.ts';

/**
 * Publishes the binary RPMs into repos/<bucket>/<platform>/<arch>/ and updates the repository
 * metadata with createrepo_c, so the bucket is a yum repository dnf can use. Builders that publish
 * into the same repository take turns (a lock on its directory).
 */
export class CreaterepoPublisher implements PublishCommand {
  readonly name = 'createrepo';
  readonly tools = ['createrepo_c'];
  constructor(private readonly repos: string) {}

  async run(task: AttemptRun): Promise<void> {
    const { bucket, platform, arch } = task.claim;
    const repo = join(this.repos, bucket, platform, arch);
    await mkdir(repo, { recursive: true });
    const rpms = task.info.products.filter((p) => p.endsWith('.rpm') && !p.endsWith('.src.rpm'));
    const release = await lockRepository(repo, task);
    try {
      for (const rpm of rpms) {
        // Copied under a temporary name and renamed, so dnf never reads half a package.
        const tmp = join(repo, `.${basename(rpm)}.tmp`);
        await copyFile(rpm, tmp);
        await rename(tmp, join(repo, basename(rpm)));
      }
      const r = await runCommand('createrepo_c', ['--update', '--quiet', '--excludes', '.*', repo], {
        output: task.log,
        signal: task.signal,
        timeoutMs: 10 * 60_000,
      });
      if (r.error || r.code !== 0)
        throw new PhaseFailure(
          `Failed to update the repository ${repo}: ${r.error?.message ?? `createrepo_c exit code ${r.code}`}`,
        );
    } finally {
      await release();
    }
    logLine(task, `published ${rpms.length} package${rpms.length === 1 ? '' : 's'} into ${repo}`);
  }
}
