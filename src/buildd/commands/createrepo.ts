import { randomBytes } from 'node:crypto';
import { copyFile, link, lstat, mkdir, readdir, readFile, readlink, rename, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { METADATA_GENERATION, RPM_KEY_FILE } from '../../core/yum-lines.ts';
import { runCommand } from '../../util/child.ts';
import { removeTree, writeFileAtomic } from '../../util/fs-safe.ts';
import { logLine, PhaseFailure, type PublishCommand, type AttemptRun } from '../phases.ts';
import { lockRepository } from './repository-lock.ts';

/**
 * Publishes the binary RPMs into repos/<bucket>/<platform>/<arch>/ and updates the repository
 * metadata with createrepo_c, so the bucket is a yum repository dnf can use, from the disk or over
 * HTTP while it is being published. Builders that publish into the same repository take turns (a
 * lock on its directory).
 *
 * createrepo_c swaps its own `repodata/` by two renames and deletes the old files at once: a reader
 * in between finds no repomd.xml, or one whose files are gone. So each publish writes a new
 * generation of the metadata beside the old one (`.meta-…/repodata`, reusing what the old one knew
 * of unchanged packages) that also holds the old one's files, for readers that fetched its
 * repomd.xml, and `repodata` is a symbolic link switched to it by one rename.
 */
export class CreaterepoPublisher implements PublishCommand {
  readonly name = 'createrepo';
  readonly tools = ['createrepo_c'];
  /**
   * @param publicKey the armoured public key the packages are signed with, when a signer signs
   *   them; it is published beside them as RPM-GPG-KEY-pkgforge for `gpgkey=`.
   */
  constructor(
    private readonly repos: string,
    private readonly publicKey: (() => Promise<string>) | null = null,
  ) {}

  async run(task: AttemptRun): Promise<void> {
    const { bucket, platform, arch } = task.claim;
    const repo = join(this.repos, bucket, platform, arch);
    await mkdir(repo, { recursive: true });
    const rpms = task.info.products.filter((p) => p.endsWith('.rpm') && !p.endsWith('.src.rpm'));
    const key =
      this.publicKey &&
      (await this.publicKey().catch((err: Error) => {
        throw new PhaseFailure(`Cannot publish the signing key into ${repo}: ${err.message}`);
      }));
    const release = await lockRepository(repo, task);
    try {
      for (const rpm of rpms) {
        // Copied under a temporary name and renamed, so dnf never reads half a package.
        const tmp = join(repo, `.${basename(rpm)}.tmp`);
        await copyFile(rpm, tmp);
        await rename(tmp, join(repo, basename(rpm)));
      }
      if (key !== null && (await readFile(join(repo, RPM_KEY_FILE), 'utf8').catch(() => '')) !== key)
        await writeFileAtomic(join(repo, RPM_KEY_FILE), key);
      await this.index(task, repo);
    } finally {
      await release();
    }
    logLine(task, `published ${rpms.length} package${rpms.length === 1 ? '' : 's'} into ${repo}`);
  }

  /** A new generation of the metadata, made current by one rename; the older ones but the last go. */
  private async index(task: AttemptRun, repo: string): Promise<void> {
    const link = join(repo, 'repodata');
    const current = await currentGeneration(repo);
    const generation = `.meta-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    await mkdir(join(repo, generation));
    const r = await runCommand(
      'createrepo_c',
      [
        '--update',
        ...(current ? ['--update-md-path', join(repo, current)] : []),
        '--outputdir',
        join(repo, generation),
        '--quiet',
        '--excludes',
        '.*',
        repo,
      ],
      { output: task.log, signal: task.signal, timeoutMs: 10 * 60_000 },
    );
    if (r.error || r.code !== 0) {
      await removeTree(join(repo, generation));
      throw new PhaseFailure(
        `Failed to update the repository ${repo}: ${r.error?.message ?? `createrepo_c exit code ${r.code}`}`,
      );
    }
    if (current) await keepPrevious(join(repo, current, 'repodata'), join(repo, generation, 'repodata'));
    const tmp = join(repo, `.repodata-${generation}.link`);
    await symlink(join(generation, 'repodata'), tmp);
    await rename(tmp, link);
    for (const name of await readdir(repo))
      if (METADATA_GENERATION.test(name) && name !== generation) await removeTree(join(repo, name));
  }
}

/**
 * The previous generation's files (their names carry their checksums), linked into the new one: a
 * reader that fetched the previous repomd.xml just before the switch still finds what it names.
 */
async function keepPrevious(previous: string, next: string): Promise<void> {
  const repomd = await readFile(join(previous, 'repomd.xml'), 'utf8').catch(() => '');
  for (const [, name] of repomd.matchAll(/<location href="repodata\/([^"/]+)"/g))
    await link(join(previous, name!), join(next, name!)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST' && err.code !== 'ENOENT') throw err;
    });
}

/**
 * The generation `repodata` points at, or null for a new repository. A `repodata` directory of
 * its own (published before generations) becomes a generation first, once.
 */
async function currentGeneration(repo: string): Promise<string | null> {
  const link = join(repo, 'repodata');
  const st = await lstat(link).catch(() => null);
  if (st === null) return null;
  if (st.isSymbolicLink()) {
    const name = (await readlink(link)).split('/')[0]!;
    return METADATA_GENERATION.test(name) ? name : null;
  }
  const generation = `.meta-0-${randomBytes(4).toString('hex')}`;
  await mkdir(join(repo, generation));
  await rename(link, join(repo, generation, 'repodata'));
  await symlink(join(generation, 'repodata'), link);
  return generation;
}
