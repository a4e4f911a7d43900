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
 * or an older version, is refused with the reason: apt would never install it.
 */
export class RepreproPublisher implements PublishCommand {
  readonly name = 'reprepro';
  readonly tools = ['reprepro', 'gpg'];
  constructor(
    private readonly repos: string,
    private readonly signingKey: () => Promise<SigningKey>,
  ) {}

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
    const armoured = await exportPublicKey(key);
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
    let said = '';
    const output = new Writable({
      write: (chunk: Buffer, _e, done) => {
        said += chunk.toString();
        task.log.write(chunk, () => done());
      },
    });
    const r = await runCommand('reprepro', ['-b', repo, 'includedeb', suite, deb], {
      output,
      signal: task.signal,
      timeoutMs: 10 * 60_000,
      env: { ...process.env, GNUPGHOME: key.gnupgHome },
    });
    const name = basename(deb);
    if (r.error || r.code !== 0) {
      if (/expected: .*, got: /.test(said))
        throw new PhaseFailure(
          `${name}: this version is already published in ${suite} with other contents; publish a new version (a higher Debian revision)`,
        );
      throw new PhaseFailure(
        `Failed to publish ${name} into ${repo}: ${r.error?.message ?? `reprepro exit code ${r.code}`}`,
      );
    }
    // reprepro skips, and exits 0, when the suite has this version or a newer one: the same
    // version is this very package published before; an older one is refused here.
    const skipped = said.match(/Skipping inclusion of '([^']+)' '([^']+)' in '[^']+', as it has already '([^']+)'/);
    if (skipped && skipped[2] !== skipped[3])
      throw new PhaseFailure(
        `${name}: version ${skipped[2]} of ${skipped[1]} is older than the ${skipped[3]} already published in ${suite}; apt would never install it`,
      );
  }
}
