import { runCommand } from '../../util/child.ts';
import { logLine, PhaseFailure, type PublishCommand, type AttemptRun } from '../phases.ts';

/**
 * Runs a site's own publishing command with the built RPMs as arguments (the original's
 * pkgsubmit), e.g. `command: [/usr/sbin/pkgsubmit, -B, '{bucket}']`. `{bucket}`, `{platform}` and
 * `{arch}` are replaced. A non-zero exit fails the task.
 */
export class CommandPublisher implements PublishCommand {
  readonly name = 'command';
  readonly tools: string[];
  private readonly argv: string[];
  constructor(params: { command?: unknown }) {
    const argv = Array.isArray(params.command)
      ? params.command.map(String)
      : typeof params.command === 'string'
        ? params.command.split(/\s+/).filter(Boolean)
        : [];
    if (argv.length === 0) throw new Error("the command publisher needs a 'command' parameter");
    this.argv = argv;
    this.tools = [argv[0]!];
  }

  async run(task: AttemptRun): Promise<void> {
    const rpms = task.info.products.filter((p) => p.endsWith('.rpm'));
    if (rpms.length === 0) return;
    const fill = (a: string) =>
      a
        .replaceAll('{bucket}', task.claim.bucket)
        .replaceAll('{platform}', task.claim.platform)
        .replaceAll('{arch}', task.claim.arch);
    const [cmd, ...args] = this.argv.map(fill);
    const r = await runCommand(cmd!, [...args, ...rpms], {
      output: task.log,
      signal: task.signal,
      timeoutMs: 30 * 60_000,
    });
    if (r.error || r.code !== 0)
      throw new PhaseFailure(`The publishing command ${cmd} failed: ${r.error?.message ?? `exit code ${r.code}`}`);
    logLine(task, `published ${rpms.length} packages with ${cmd}`);
  }
}
