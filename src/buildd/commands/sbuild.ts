import { chmod, chown, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { debianArch } from '../../core/debian-arch.ts';
import { debianSuite } from '../../core/debian-suites.ts';
import { buildInOrder } from '../../core/build-order.ts';
import { validateDsc } from '../../sources/dsc.ts';
import { runCommand } from '../../util/child.ts';
import { messageOf } from '../../util/errors.ts';
import { childPath, linkOrCopy } from '../../util/fs-safe.ts';
import { subordinateIdCount, type UserIds } from '../../util/users.ts';
import { findBuildRoot } from '../buildroot.ts';
import { logLine, PhaseFailure, type PhaseCommand, type TaskRun } from '../phases.ts';
import { assertRealDirectories, DEBIAN_PRODUCT_ENDINGS, takeDebianProduct } from '../products.ts';
import { PATH, type Sandbox } from '../sandbox.ts';
import { watchLimits } from '../sandbox-watch.ts';
import { canReach } from '../workspace.ts';
import { readSbuildFailure, sbuildReason } from './sbuild-reason.ts';

/** The ids a user namespace of the build user must map: a whole system's, as the build root has them. */
const SUBORDINATE_IDS = 65536;
/** How much of sbuild's output is kept to read its reason from (its summary is at the end). */
const TAIL_BYTES = 256 * 1024;
/** How often the work directory's size is looked at: it holds a whole unpacked system (450 MB, 13,000 files). */
const WATCH_EVERY_MS = 5000;

export interface SbuildOptions {
  /** Where the platforms' build roots are (`buildroots`). */
  buildroots: string;
  /** Published repositories: the bucket's APT repository gives build dependencies too. */
  repos: string;
}

/**
 * Builds a job's `.dsc`s with sbuild in its unshare mode, the way Debian's buildds do: each package
 * in a fresh unpacked copy of the platform's build root (`pkgforge buildroot create`), its
 * Build-Depends installed by apt inside from the mirror, from the packages this task built before
 * it and from what the bucket has published for the platform; the build itself without network.
 *
 * sbuild makes its own namespaces (user, mount, PID, IPC, UTS, network), which needs the setuid
 * newuidmap to map the build user's subordinate ids; that cannot happen inside the bubblewrap
 * sandbox (no new privileges, no nested user namespaces). So sbuild runs beside it, never as root:
 * as the sandbox's build user (the daemon's own when it is not root), with a clean environment,
 * its work directory watched for size and its time bounded; what it leaves is taken out as
 * products are (products.ts). Everything else that reads the packages (lintian) stays in the
 * bubblewrap sandbox. See docs/security.md.
 */
export class SbuildBuilder implements PhaseCommand {
  readonly name = 'sbuild';
  readonly tools = ['sbuild', 'newuidmap', 'newgidmap'];
  constructor(private readonly o: SbuildOptions) {}

  /** What stands in the way of building for a platform here: no build root, a user who cannot run sbuild. */
  async preflight(platform: string, arch: string, sandbox: Sandbox): Promise<string[]> {
    const problems: string[] = [];
    if (!debianSuite(platform)) problems.push(`sbuild cannot tell which Debian release the platform ${platform} is`);
    const root = await findBuildRoot(this.o.buildroots, platform, arch);
    if (!root)
      problems.push(
        `the platform ${platform}/${arch} has no build root in ${this.o.buildroots} (make it with \`pkgforge buildroot create ${platform}\`)`,
      );
    const user = buildUser(sandbox);
    if (typeof user === 'string') problems.push(user);
    else {
      for (const file of ['/etc/subuid', '/etc/subgid'] as const)
        if ((await subordinateIdCount(user, file)) < SUBORDINATE_IDS)
          problems.push(
            `the build user '${user.name}' has fewer than ${SUBORDINATE_IDS} subordinate ids in ${file}, which sbuild's unshare mode needs (usermod --add-subuids 200000-265535 --add-subgids 200000-265535 ${user.name})`,
          );
      if (root && !(await canReach(user, this.o.buildroots)))
        problems.push(`the build user '${user.name}' cannot reach the build roots in ${this.o.buildroots}`);
    }
    return problems;
  }

  private seen = new Set<string>();

  async run(task: TaskRun): Promise<void> {
    const { platform, arch, bucket } = task.claim;
    const suite = debianSuite(platform);
    const root = await findBuildRoot(this.o.buildroots, platform, arch);
    const user = buildUser(task.sandbox);
    if (!suite || !root || typeof user === 'string')
      throw new PhaseFailure(
        `Cannot build for ${platform}/${arch} with sbuild: ${(await this.preflight(platform, arch, task.sandbox)).join('; ')}`,
      );
    // Build dependencies beyond the mirror: the bucket's published packages, then this task's own.
    const deps = join(task.workspace.root, 'deps');
    await mkdir(deps, { mode: 0o755 });
    const published = await publishedPackages(join(this.o.repos, bucket, 'deb'), platform, debianArch(arch), deps);
    if (published > 0)
      logLine(task, `${published} packages published in ${bucket} for ${platform} may satisfy build dependencies`);
    let index = 0;
    const reasons = new Map<string, string>(); // each package's latest failure
    const sources = task.manifest.packages.map((p) => ({ file: p.file, n: index++ }));
    const { failed, gaveUpEarly } = await buildInOrder(
      sources,
      async (s) => {
        if (task.signal.aborted) throw new PhaseFailure('the build was stopped');
        const architectures = (await validateDsc(join(task.acceptedDir, s.file))).architectures;
        const reason = await this.buildOne(task, s.file, `${s.n}`, {
          suite,
          tarball: root.file,
          user,
          deps,
          archAll: buildsArchAll(architectures, arch),
        });
        if (reason) {
          logLine(task, reason);
          reasons.set(s.file, reason);
          return false;
        }
        task.info.success.push(s.file);
        for (const p of await this.takeProducts(task, `out-${s.n}`))
          if (p.endsWith('.deb')) await linkOrCopy(p, childPath(deps, basename(p)));
        return true;
      },
      {
        errorPolicy: task.errorPolicy,
        onRetry: (again) =>
          logLine(task, `retrying ${again.map((s) => s.file).join(', ')} now that other packages are built`),
      },
    );
    task.info.failures = failed.map((f) => f.file);
    if (failed.length === 0) return;
    const last = failed.map((f) => reasons.get(f.file) ?? `${f.file}: it did not build`);
    throw new PhaseFailure(`Failed to build ${last.join('; ')}${gaveUpEarly ? ' (error policy: immediate)' : ''}`);
  }

  /** Builds one `.dsc`; returns why it failed, or null when it built. */
  private async buildOne(
    task: TaskRun,
    file: string,
    n: string,
    b: { suite: string; tarball: string; user: UserIds; deps: string; archAll: boolean },
  ): Promise<string | null> {
    const { build, sources } = task.workspace;
    logLine(task, `building ${file} with sbuild in ${b.tarball} (${b.suite}) as ${b.user.name}`);
    // Its own directories, owned by the build user: where it runs, where the products go, where
    // it unpacks the build root (inside the work directory, so its size counts and it goes with it).
    const own = async (name: string, mode = 0o755) => {
      const dir = join(build.host, name);
      await mkdir(dir, { recursive: true, mode });
      await chmod(dir, mode);
      if (b.user.uid !== process.geteuid?.()) await chown(dir, b.user.uid, b.user.gid);
      return dir;
    };
    const cwd = await own(`run-${n}`);
    const out = await own(`out-${n}`);
    // Like /tmp: the build root's own root, a subordinate id, owns what it unpacks here and must be
    // able to remove it again at the end.
    const unpack = await own(`unpack-${n}`, 0o1777);
    // The build root is unpacked by its own root, a subordinate id of the build user's, which must
    // be able to pass through the work directory to reach it (not to list it).
    await chmod(build.host, 0o711);
    const config = join(task.workspace.root, `sbuild-${n}.conf`);
    await writeFile(config, `$unshare_tmpdir_template = ${perlString(`${unpack}/tmp.sbuild.XXXXXXXXXX`)};\n1;\n`, {
      mode: 0o644,
    });
    const hasDeps = (await readdir(b.deps)).some((f) => f.endsWith('.deb'));
    const args = [
      '--chroot-mode=unshare',
      `--chroot=${b.tarball}`,
      `--dist=${b.suite}`,
      `--arch=${debianArch(task.claim.arch)}`,
      b.archAll ? '--arch-all' : '--no-arch-all',
      '--no-run-lintian',
      '--no-run-piuparts',
      '--no-run-autopkgtest',
      '--no-clean-source',
      '--no-source-only-changes',
      '--nolog',
      '--bd-uninstallable-explainer=none',
      `--build-dir=${out}`,
      ...(hasDeps ? [`--extra-package=${b.deps}`] : []),
      join(sources.host, file),
    ];
    let tail = '';
    const output = new Writable({
      write: (chunk: Buffer, _e, done) => {
        tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
        task.log.write(chunk, () => done());
      },
    });
    const home = { host: build.host, at: build.host, writable: true };
    const r = await watchLimits(
      {
        argv: ['sbuild', ...args],
        binds: [home],
        home,
        output,
        timeoutMs: task.timeoutSeconds * 1000,
        signal: task.signal,
        processLog: task.workspace.processLog,
      },
      task.sandbox.limits,
      (signal, watched, onSpawn) =>
        runCommand('sbuild', args, {
          cwd,
          output: watched,
          signal,
          timeoutMs: task.timeoutSeconds * 1000,
          onSpawn,
          env: {
            PATH,
            HOME: build.host,
            USER: b.user.name,
            LOGNAME: b.user.name,
            LANG: 'C.UTF-8',
            TMPDIR: unpack,
            SBUILD_CONFIG: config,
          },
          ...(b.user.uid !== process.geteuid?.() && { uid: b.user.uid, gid: b.user.gid }),
        }),
      // `du` of a whole unpacked system every second slowed hello's build by about a tenth (bench:deb).
      WATCH_EVERY_MS,
    );
    if (r.limit) return `${file}: the build exceeded ${r.limit}`;
    if (r.timedOut) return `${file}: killed after the build timeout of ${task.timeoutSeconds} s`;
    if (r.aborted) throw new PhaseFailure('the build was stopped');
    if (r.error) return `${file}: could not run sbuild: ${r.error.message}`;
    if (r.code === 0) {
      logLine(task, `${file}: built`);
      return null;
    }
    return sbuildReason(file, readSbuildFailure(tail), r.code);
  }

  /** The `.deb`s, `.changes` and `.buildinfo` sbuild left in `out`, checked and taken as products. */
  private async takeProducts(task: TaskRun, out: string): Promise<string[]> {
    const taken: string[] = [];
    if (!(await assertRealDirectories(task.workspace.build.host, out))) return taken;
    for (const name of (await readdir(join(task.workspace.build.host, out))).sort()) {
      if (!DEBIAN_PRODUCT_ENDINGS.some((e) => name.endsWith(e)) || this.seen.has(name)) continue;
      this.seen.add(name);
      const p = await takeDebianProduct(
        join(task.workspace.build.host, out, name),
        task.workspace.products.host,
        task.sandbox.limits.product,
      );
      taken.push(p);
      task.info.products.push(p);
    }
    return taken;
  }
}

/**
 * Who sbuild runs as: the sandbox's build user, else the daemon's own user; never root (sbuild's
 * unshare mode maps the build's root to a subordinate id of this user, and a host root would gain
 * nothing from it but lose the boundary).
 */
function buildUser(sandbox: Sandbox): UserIds | string {
  if (sandbox.user) return sandbox.user;
  const me = userInfo();
  if (me.uid === 0)
    return 'sbuild never runs as root: run the daemon with the bubblewrap sandbox (its build user, sandbox_user, then runs sbuild) or as an unprivileged user';
  return { name: me.username, uid: me.uid, gid: me.gid };
}

/**
 * Whether this task builds the `Architecture: all` packages of a source: when the source has
 * nothing else to build, or on amd64 (the arch `debianTargets` gives them to when a platform has it).
 */
function buildsArchAll(architectures: readonly string[], arch: string): boolean {
  if (!architectures.includes('all')) return false;
  return architectures.every((a) => a === 'all') || debianArch(arch) === 'amd64';
}

/** A Perl single-quoted string: only `\` and `'` need escaping. */
function perlString(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * Links (or copies) the `.deb`s the bucket's APT repository publishes for a suite and arch into
 * `into`, from its `Packages` index (the farm's own file, written by reprepro); returns how many.
 */
async function publishedPackages(repo: string, suite: string, arch: string, into: string): Promise<number> {
  const index = join(repo, 'dists', suite, 'main', `binary-${arch}`, 'Packages');
  const text = await readFile(index, 'utf8').catch(() => null);
  if (text === null) return 0;
  let n = 0;
  for (const [, file] of text.matchAll(/^Filename: (\S+)$/gm)) {
    if (!file || file.split('/').includes('..') || !file.endsWith('.deb')) continue;
    try {
      await linkOrCopy(join(repo, file), childPath(into, basename(file)));
    } catch (err) {
      throw new PhaseFailure(`Cannot take ${file} from the bucket's repository ${repo}: ${messageOf(err)}`);
    }
    n++;
  }
  return n;
}
