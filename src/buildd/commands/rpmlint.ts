import type { PhaseCommand, TaskRun } from '../phases.ts';
import { checkPackages } from './package-check.ts';

/**
 * Runs rpmlint on every binary RPM, in the sandbox; output in check-rpmlint.log. Findings fail the
 * task only when configured `strict: true` (the original never failed on them); rpmlint itself
 * failing to run always does.
 */
export class RpmlintCheck implements PhaseCommand {
  readonly name = 'rpmlint';
  readonly tools = ['rpmlint'];
  constructor(private readonly params: { strict?: boolean }) {}

  run(task: TaskRun): Promise<void> {
    return checkPackages(task, {
      name: this.name,
      files: (products) => products.filter((p) => p.endsWith('.rpm') && !p.endsWith('.src.rpm')),
      argv: (file) => ['rpmlint', file],
      // rpmlint sets bit 64 when it found errors; other non-zero codes (but 66, badness) mean it could not run.
      verdict: (code) => (code & 64 ? 'findings' : code === 0 || code === 66 ? 'clean' : 'broken'),
      strict: this.params.strict === true,
    });
  }
}
