import { createWriteStream } from 'node:fs';
import { basename, join } from 'node:path';
import { once } from 'node:events';
import { logLine, PhaseFailure, type PhaseCommand, type TaskRun } from '../phases.ts';

/**
 * Runs rpmlint on every binary RPM, output in check-rpmlint.log. Findings fail the task only when
 * configured `strict: true` (the original never failed on them); rpmlint itself failing to run
 * always does.
 */
export class RpmlintCheck implements PhaseCommand {
  readonly name = 'rpmlint';
  readonly tools = ['rpmlint'];
  constructor(private readonly params: { strict?: boolean }) {}

  async run(task: TaskRun): Promise<void> {
    const logFile = join(task.attemptDir, 'check-rpmlint.log');
    const out = createWriteStream(logFile, { flags: 'a' });
    task.info.logs.push(basename(logFile));
    const failing: string[] = [];
    try {
      for (const pkg of task.info.products.filter((p) => p.endsWith('.rpm') && !p.endsWith('.src.rpm'))) {
        out.write(`Running rpmlint on ${basename(pkg)}\n`);
        // rpmlint reads what the build made: it runs in the sandbox, with the products read-only.
        const { build, products } = task.workspace;
        const r = await task.sandbox.run({
          argv: ['rpmlint', task.sandbox.path(products, basename(pkg))],
          binds: [products, build],
          home: build,
          output: out,
          signal: task.signal,
          timeoutMs: 10 * 60_000,
          processLog: task.workspace.processLog,
        });
        out.write('\n');
        if (r.limit) throw new PhaseFailure(`rpmlint on ${basename(pkg)} exceeded ${r.limit}`);
        if (r.error || r.code === null)
          throw new PhaseFailure(
            `Failed to run rpmlint on ${basename(pkg)}: ${r.error?.message ?? `killed by ${r.signal}`}`,
          );
        // rpmlint sets bit 64 when it found errors; other non-zero codes mean it could not run.
        if (r.code & 64) failing.push(basename(pkg));
        else if (r.code !== 0 && r.code !== 66)
          throw new PhaseFailure(
            `Failed to run rpmlint on ${basename(pkg)} (exit code ${r.code}); see check-rpmlint.log`,
          );
      }
    } finally {
      out.end();
      await once(out, 'close');
    }
    for (const f of failing) logLine(task, `Package '${f}' failed the rpmlint check`);
    if (failing.length > 0 && this.params.strict)
      throw new PhaseFailure(`rpmlint found errors in ${failing.join(', ')} (strict checking); see check-rpmlint.log`);
  }
}
