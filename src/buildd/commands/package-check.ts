import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { basename, join } from 'node:path';
import { logLine, PhaseFailure, type TaskRun } from '../phases.ts';

/** A checker of built packages (rpmlint, lintian) and how to read its exit code. */
export interface PackageChecker {
  /** Its name, as in configuration: its output goes to check-<name>.log. */
  name: string;
  /** The products it checks, each in turn. */
  files: (products: readonly string[]) => string[];
  /** Its command line for one file, as the sandbox sees it. */
  argv: (file: string) => [string, ...string[]];
  /** What an exit code means: the package has findings it fails on, it is clean, or the checker could not run. */
  verdict: (code: number) => 'findings' | 'clean' | 'broken';
  /** Fail the task on findings (`strict: true`); otherwise they are only reported. */
  strict: boolean;
}

/**
 * Runs a checker on each of a task's packages in the sandbox, with the products read-only, its
 * output in check-<name>.log. Findings fail the task only when checking is strict (the original
 * never failed on them); the checker failing to run always does.
 */
export async function checkPackages(task: TaskRun, c: PackageChecker): Promise<void> {
  const logName = `check-${c.name}.log`;
  const out = createWriteStream(join(task.attemptDir, logName), { flags: 'a' });
  task.info.logs.push(logName);
  const failing: string[] = [];
  try {
    for (const pkg of c.files(task.info.products)) {
      const name = basename(pkg);
      out.write(`Running ${c.name} on ${name}\n`);
      const { build, products } = task.workspace;
      const r = await task.sandbox.run({
        argv: c.argv(task.sandbox.path(products, name)),
        binds: [products, build],
        home: build,
        output: out,
        signal: task.signal,
        timeoutMs: 10 * 60_000,
        processLog: task.workspace.processLog,
      });
      out.write('\n');
      if (r.limit) throw new PhaseFailure(`${c.name} on ${name} exceeded ${r.limit}`);
      if (r.error || r.code === null)
        throw new PhaseFailure(`Failed to run ${c.name} on ${name}: ${r.error?.message ?? `killed by ${r.signal}`}`);
      const verdict = c.verdict(r.code);
      if (verdict === 'findings') failing.push(name);
      else if (verdict === 'broken')
        throw new PhaseFailure(`Failed to run ${c.name} on ${name} (exit code ${r.code}); see ${logName}`);
    }
  } finally {
    out.end();
    await once(out, 'close');
  }
  for (const f of failing) logLine(task, `Package '${f}' failed the ${c.name} check`);
  if (failing.length > 0 && c.strict)
    throw new PhaseFailure(`${c.name} found errors in ${failing.join(', ')} (strict checking); see ${logName}`);
}
