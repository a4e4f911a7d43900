import type { PhaseCommand, TaskRun } from '../phases.ts';
import { checkPackages } from './package-check.ts';

/**
 * Runs lintian, Debian's package checker, on each `.changes` a build made (so on every `.deb` it
 * lists), in the sandbox; output in check-lintian.log. Errors fail the task only with
 * `strict: true`, as rpmlint's do.
 */
export class LintianCheck implements PhaseCommand {
  readonly name = 'lintian';
  readonly tools = ['lintian'];
  constructor(private readonly params: { strict?: boolean }) {}

  run(task: TaskRun): Promise<void> {
    return checkPackages(task, {
      name: this.name,
      files: (products) => products.filter((p) => p.endsWith('.changes')),
      argv: (file) => ['lintian', '--no-cfg', '--', file],
      // 2: tags at its fail-on level (errors); 1: it could not run (lintian(1), EXIT STATUS).
      verdict: (code) => (code === 0 ? 'clean' : code === 2 ? 'findings' : 'broken'),
      strict: this.params.strict === true,
    });
  }
}
