import { homedir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, runCommand } from '../../util/child.ts';
import { PhaseFailure, type PhaseCommand, type TaskRun } from '../phases.ts';
import { exportPublicKey, type SigningKey } from '../signing-key.ts';

/**
 * Signs every built RPM with `rpmsign --addsign`: with the GnuPG key named by the `key` parameter
 * (in the daemon's own GnuPG home), or else with the farm's signing key, the one its APT
 * repositories are signed with (`signing_key` in `gnupg_home`, or the farm's own).
 */
export class RpmsignSigner implements PhaseCommand {
  readonly name = 'rpmsign';
  readonly tools = ['rpmsign', 'gpg'];
  constructor(
    private readonly params: { key?: string },
    private readonly farmKey: () => Promise<SigningKey>,
  ) {}

  /**
   * The armoured public half of the key the packages are signed with, for the repositories they
   * are published into (exported once: each export is a gpg process).
   */
  publicKey = (): Promise<string> =>
    (this.#publicKey ??= (
      this.params.key
        ? exportPublicKey({
            gnupgHome: process.env.GNUPGHOME ?? join(homedir(), '.gnupg'),
            fingerprint: this.params.key,
          })
        : this.farmKey().then(exportPublicKey)
    ).catch((err: unknown) => {
      this.#publicKey = null; // the next publish tries again
      throw err;
    }));
  #publicKey: Promise<string> | null = null;

  async run(task: TaskRun): Promise<void> {
    const rpms = task.info.products.filter((p) => p.endsWith('.rpm'));
    if (rpms.length === 0) return;
    // rpm's default %__gpg differs between distributions (gpg2 on some): name the one on PATH.
    const gpg = (await findExecutable('gpg')) ?? 'gpg';
    const key = this.params.key
      ? { name: this.params.key, home: [] }
      : await this.farmKey().then(
          (k) => ({ name: k.fingerprint, home: ['--define', `_gpg_path ${k.gnupgHome}`] }),
          (err: Error) => {
            throw new PhaseFailure(`Cannot sign the packages: ${err.message}`);
          },
        );
    const r = await runCommand(
      'rpmsign',
      ['--addsign', '--define', `_gpg_name ${key.name}`, ...key.home, '--define', `__gpg ${gpg}`, ...rpms],
      { output: task.log, signal: task.signal, timeoutMs: 10 * 60_000 },
    );
    if (r.error || r.code !== 0)
      throw new PhaseFailure(
        `Failed to sign the packages with key '${key.name}': ${r.error?.message ?? `exit code ${r.code}`}`,
      );
  }
}
