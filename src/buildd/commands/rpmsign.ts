import { findExecutable, runCommand } from '../../util/child.ts';
import { PhaseFailure, type PhaseCommand, type TaskRun } from '../phases.ts';

/** Signs every built RPM with `rpmsign --addsign` and the configured GnuPG key name. */
export class RpmsignSigner implements PhaseCommand {
  readonly name = 'rpmsign';
  readonly tools = ['rpmsign', 'gpg'];
  constructor(private readonly params: { key?: string }) {
    if (!params.key) throw new Error("the rpmsign signer needs a 'key' parameter (the GnuPG key name)");
  }

  async run(task: TaskRun): Promise<void> {
    const rpms = task.info.products.filter((p) => p.endsWith('.rpm'));
    if (rpms.length === 0) return;
    // rpm's default %__gpg differs between distributions (gpg2 on some): name the one on PATH.
    const gpg = (await findExecutable('gpg')) ?? 'gpg';
    const r = await runCommand(
      'rpmsign',
      ['--addsign', '--define', `_gpg_name ${this.params.key}`, '--define', `__gpg ${gpg}`, ...rpms],
      { output: task.log, signal: task.signal, timeoutMs: 10 * 60_000 },
    );
    if (r.error || r.code !== 0)
      throw new PhaseFailure(
        `Failed to sign the packages with key '${this.params.key}': ${r.error?.message ?? `exit code ${r.code}`}`,
      );
  }
}
