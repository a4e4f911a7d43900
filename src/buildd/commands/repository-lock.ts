import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { logLine, PhaseFailure, type AttemptRun } from '../phases.ts';

/**
 * Takes the publishing lock of a repository directory, so builders publishing into one repository
 * take turns (waiting up to about ten minutes). The wait may be long: an attempt cancelled or
 * superseded meanwhile publishes nothing. Returns the function that releases it.
 */
export async function lockRepository(repo: string, task: AttemptRun): Promise<() => Promise<void>> {
  const release = await lockfile.lock(repo, {
    lockfilePath: join(repo, '.publish.lock'),
    retries: { retries: 600, minTimeout: 100, maxTimeout: 1000 },
    stale: 60_000,
    realpath: false,
    onCompromised: (err) => logLine(task, `the publishing lock on ${repo} was lost: ${err.message}`),
  });
  if (task.signal.aborted) {
    await release().catch(() => {});
    throw new PhaseFailure('stopped before publishing');
  }
  return () => release().catch(() => {});
}
