import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { APT_KEY_FILE } from '../../core/apt-lines.ts';
import { debianArch } from '../../core/debian-arch.ts';
import { runCommand } from '../../util/child.ts';
import { writeFileAtomic } from '../../util/fs-safe.ts';
import { logLine, PhaseFailure, type AttemptRun, type PublishCommand } from '../phases.ts';
import { exportPublicKey, type SigningKey } from '../signing-key.ts';
import { lockRepository } from './repository-lock.ts';

/**
 * Publishes the built `.deb`s into the bucket's APT repository, repos/<bucket>/deb/, with reprepro:
 * one suite per platform, named after it (`deb12`), component `main`, so a user's line is
 * `deb [signed-by=KEY] URL/repos/<bucket>/deb deb12 main`. Release and InRelease are signed with the
 * farm's key. reprepro writes each index under a new name and renames it, so a reader never sees a
 * half-written one; builders publishing into one repository take turns (a lock on it).
 *
 * A newer version replaces the published one. The same version with the same contents is already
 * there (a republished attempt, after a crash): nothing to do. The same version with other contents,
 * or an older version, is refused with the reason (apt would never install it), unless the bucket
 * is one the publisher's `allow_replace` names: then it replaces the published package.
 */
export class RepreproPublisher implements PublishCommand {
  readonly name = 'reprepro';
  readonly tools = ['reprepro', 'gpg'];
  constructor(
    private readonly repos: string,
    private readonly signingKey: () => Promise<SigningKey>,
    /** Buckets (`'*'`: every one) that take any version in place of the published one (`allow_replace`). */
    private readonly allowReplace: readonly string[] = [],
  ) {}

  /** The armoured public key, by fingerprint. */
  private readonly exported = new Map<string, string>();

  async run(task: AttemptRun): Promise<void> {
    const { bucket, platform, arch } = task.claim;
    const debs = task.info.products.filter((p) => p.endsWith('.deb'));
    if (debs.length === 0) return;
    const repo = join(this.repos, bucket, 'deb');
    await mkdir(join(repo, 'conf'), { recursive: true });
    const key = await this.signingKey().catch((err: Error) => {
      throw new PhaseFailure(`Cannot sign the APT repository ${repo}: ${err.message}`);
    });
    const release = await lockRepository(repo, task);
    try {
      await this.ensureSuite(repo, platform, debianArch(arch), key.fingerprint);
      await this.publishKey(repo, key);
      for (const deb of debs) await this.include(task, repo, platform, deb, key);
    } finally {
      await release();
    }
    logLine(task, `published ${debs.length} package${debs.length === 1 ? '' : 's'} into ${repo} (suite ${platform})`);
  }

  /**
   * The public half of the key the repository is signed with, as `key.asc` beside `dists/`, where
   * users and the web server find it (rewritten when the key changed).
   */
  private async publishKey(repo: string, key: SigningKey): Promise<void> {
    const file = join(repo, APT_KEY_FILE);
    // Exported once per key, not at every publish (each export is a gpg process).
    let armoured = this.exported.get(key.fingerprint);
    if (armoured === undefined) this.exported.set(key.fingerprint, (armoured = await exportPublicKey(key)));
    if ((await readFile(file, 'utf8').catch(() => '')) !== armoured) await writeFileAtomic(file, armoured);
  }

  /** conf/distributions gains the platform's suite, or its architecture, if it lacks them. */
  private async ensureSuite(repo: string, suite: string, arch: string, fingerprint: string): Promise<void> {
    const file = join(repo, 'conf', 'distributions');
    const text = await readFile(file, 'utf8').catch(() => '');
    const stanzas = text.split(/\n\s*\n/).filter((s) => s.trim() !== '');
    const index = stanzas.findIndex((s) => new RegExp(`^Codename: ${suite}$`, 'm').test(s));
    const archs = index < 0 ? [] : (stanzas[index]!.match(/^Architectures: (.*)$/m)?.[1] ?? '').split(/\s+/);
    if (index >= 0 && archs.includes(arch) && stanzas[index]!.includes(`SignWith: ${fingerprint}`)) return;
    const merged = [...new Set([...archs.filter((a) => a && a !== 'source'), arch])].sort();
    const stanza = [
      `Codename: ${suite}`,
      `Suite: ${suite}`,
      `Architectures: ${merged.join(' ')} source`,
      'Components: main',
      `Description: PkgForge packages for ${suite}`,
      `SignWith: ${fingerprint}`,
    ].join('\n');
    if (index < 0) stanzas.push(stanza);
    else stanzas[index] = stanza;
    await writeFileAtomic(file, `${stanzas.join('\n\n')}\n`);
  }

  private async include(task: AttemptRun, repo: string, suite: string, deb: string, key: SigningKey): Promise<void> {
    const name = basename(deb);
    let conflict = await this.includeOnce(task, repo, suite, deb, key);
    if (conflict && this.replaces(task.claim.bucket)) {
      // The bucket takes any version in place of the published one: remove that, then include again.
      const pkg = name.split('_')[0]!;
      const removed = await this.reprepro(task, repo, key, ['remove', suite, pkg]);
      if (removed.failed) throw new PhaseFailure(`Failed to remove ${pkg} from ${suite} of ${repo}: ${removed.failed}`);
      conflict = await this.includeOnce(task, repo, suite, deb, key);
      if (!conflict) logLine(task, `${name} replaced the published ${pkg} in ${suite} (the bucket allows replacing)`);
    }
    if (conflict) throw new PhaseFailure(conflict);
  }

  /** Whether the bucket's repository takes an older version, or the same one changed, in place of the published one. */
  private replaces(bucket: string): boolean {
    return this.allowReplace.includes(bucket) || this.allowReplace.includes('*');
  }

  /**
   * Includes one `.deb`; returns null when it is published (or was already, the same package), or
   * why the suite refuses it: an older version than the published one, or the same version with
   * other contents. Fails the phase when reprepro itself fails.
   */
  private async includeOnce(
    task: AttemptRun,
    repo: string,
    suite: string,
    deb: string,
    key: SigningKey,
  ): Promise<string | null> {
    const name = basename(deb);
    const { said, failed } = await this.reprepro(task, repo, key, ['includedeb', suite, deb]);
    if (failed) {
      if (/expected: .*, got: /.test(said))
        return `${name}: this version is already published in ${suite} with other contents; publish a new version (a higher Debian revision)`;
      throw new PhaseFailure(`Failed to publish ${name} into ${repo}: ${failed}`);
    }
    // reprepro skips, and exits 0, when the suite has this version or a newer one: the same
    // version is this very package published before; an older one is refused here.
    const skipped = said.match(/Skipping inclusion of '([^']+)' '([^']+)' in '[^']+', as it has already '([^']+)'/);
    if (skipped && skipped[2] !== skipped[3])
      return `${name}: version ${skipped[2]} of ${skipped[1]} is older than the ${skipped[3]} already published in ${suite}; apt would never install it`;
    return null;
  }

  /** Runs reprepro on the repository, its output into the task's log; what it said, and why it failed (or null). */
  private async reprepro(
    task: AttemptRun,
    repo: string,
    key: SigningKey,
    args: string[],
  ): Promise<{ said: string; failed: string | null }> {
    let said = '';
    const output = new Writable({
      write: (chunk: Buffer, _e, done) => {
        said += chunk.toString();
        task.log.write(chunk, () => done());
      },
    });
    const r = await runCommand('reprepro', ['-b', repo, ...args], {
      output,
      signal: task.signal,
      timeoutMs: 10 * 60_000,
      env: { ...process.env, GNUPGHOME: key.gnupgHome },
    });
    const failed = r.error || r.code !== 0 ? (r.error?.message ?? `reprepro exit code ${r.code}`) : null;
    return { said, failed };
  }
}
