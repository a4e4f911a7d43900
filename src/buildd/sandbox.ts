import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import type { BuildLimits } from '../core/limits.ts';
import { formatSize } from '../core/sizes.ts';
import { runCommand, type RunResult } from '../util/child.ts';
import type { UserIds } from '../util/users.ts';
import { watchLimits } from './sandbox-watch.ts';

/**
 * The boundary around everything a submitter wrote: every builder command (rpmbuild, spec
 * queries, rpmlint, later the Debian builder) runs through a Sandbox, and none builds its own
 * isolation. See docs/security.md for what it guarantees and what it does not.
 */

/** A host directory and where the command sees it. */
export interface Bind {
  host: string;
  at: string;
  writable?: boolean;
}

export interface SandboxCommand {
  argv: readonly [string, ...string[]];
  binds: readonly Bind[];
  /** The command's working directory and HOME: one of `binds`. */
  home: Bind;
  /** Where stdout and stderr go as they come (a task's log); discarded when absent. */
  output?: Writable;
  timeoutMs: number;
  signal: AbortSignal;
  /** Variables besides the fixed PATH, HOME, LANG and TMPDIR (SOURCE_DATE_EPOCH). */
  env?: Record<string, string>;
  /**
   * A file to which the command's process group and start time are appended as it starts (the
   * workspace's), so a daemon started after this one was killed can end what it left running.
   */
  processLog?: string;
}

export interface SandboxResult extends RunResult {
  /** The limit that stopped or broke the command, in words (`its limit of 4096 processes`), or null. */
  limit: string | null;
}

export interface Sandbox {
  /** `bwrap`, or `none` when builds run unconfined as the daemon (an admin's explicit choice). */
  readonly kind: 'bwrap' | 'none';
  /** The host user commands run as; null: the daemon's own user (inside a user namespace with bwrap). */
  readonly user: UserIds | null;
  readonly limits: BuildLimits;
  /** The host name commands see, when the sandbox sets one (builders record it, e.g. as rpm's BuildHost), else null. */
  readonly hostname: string | null;
  /** A path as the command sees it: the bind's place inside, plus `rest`. */
  path(bind: Bind, ...rest: string[]): string;
  run(command: SandboxCommand): Promise<SandboxResult>;
  /** One line for the build log. */
  describe(): string;
}

/** The fixed environment of every sandboxed command: nothing of the daemon's. */
export const PATH = '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin';

export interface BwrapOptions {
  user: UserIds | null;
  limits: BuildLimits;
  /** Host paths the command must not see even where they lie inside the read-only root (the farm's directories). */
  hide: readonly string[];
}

/** Builds in their own user, mount, PID, IPC, UTS, network and cgroup namespaces, with bubblewrap. */
export class BwrapSandbox implements Sandbox {
  readonly kind = 'bwrap';
  readonly hostname = 'pkgforge-build';
  readonly user: UserIds | null;
  readonly limits: BuildLimits;
  private readonly hide: readonly string[];
  constructor(options: BwrapOptions) {
    this.user = options.user;
    this.limits = options.limits;
    this.hide = options.hide;
  }

  path(bind: Bind, ...rest: string[]): string {
    return join(bind.at, ...rest);
  }

  describe(): string {
    const l = this.limits;
    return `sandbox: bubblewrap, no network, as ${this.user ? `user ${this.user.name} (${this.user.uid})` : "this daemon's user in a user namespace"}; limits: memory ${formatSize(l.memory)}, ${l.processes} processes, work directory ${formatSize(l.workdir)}, tmpfs ${formatSize(l.tmpfs)} each`;
  }

  /** bwrap's options for one command (everything before `--`). */
  bwrapArgs(command: SandboxCommand): string[] {
    // --disable-userns: no nested user namespace, so no nested PID namespace hiding processes from
    // the watcher and no tmpfs mounted without a size limit.
    const a = [
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--die-with-parent',
      '--new-session',
      '--hostname',
      this.hostname,
      '--clearenv',
    ];
    const env = { PATH, HOME: command.home.at, LANG: 'C.UTF-8', TMPDIR: '/tmp', ...command.env };
    for (const [k, v] of Object.entries(env)) a.push('--setenv', k, v);
    // The host's system, read-only: /usr and /etc, and the top-level links or directories of the
    // merged-/usr layout (on an unmerged host they are directories of their own).
    a.push('--ro-bind', '/usr', '/usr');
    for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) {
      const st = lstatSync(`/${d}`, { throwIfNoEntry: false });
      if (st?.isSymbolicLink()) a.push('--symlink', readlinkSync(`/${d}`), `/${d}`);
      else if (st?.isDirectory()) a.push('--ro-bind', `/${d}`, `/${d}`);
    }
    a.push('--ro-bind', '/etc', '/etc', '--ro-bind-try', '/var/lib/rpm', '/var/lib/rpm');
    a.push('--proc', '/proc', '--dev', '/dev');
    for (const t of ['/tmp', '/var/tmp', '/dev/shm']) a.push('--size', String(this.limits.tmpfs), '--tmpfs', t);
    // The farm's own directories, wherever they are in the visible tree, are covered by empty ones.
    // A file (a registry YAML file with credentials) is covered by /dev/null.
    const visible = this.hide.filter((h) =>
      ['/usr/', '/etc/', '/var/lib/rpm/'].some((root) => `${h}/`.startsWith(root)),
    );
    const hidden = visible.filter((h) => statSync(h, { throwIfNoEntry: false })?.isDirectory());
    for (const h of hidden) a.push('--size', '4096', '--tmpfs', h);
    for (const f of visible.filter((h) => statSync(h, { throwIfNoEntry: false })?.isFile()))
      a.push('--ro-bind', '/dev/null', f);
    for (const b of command.binds) a.push(b.writable ? '--bind' : '--ro-bind', b.host, b.at);
    for (const h of hidden) a.push('--remount-ro', h);
    // Nothing is writable outside the binds and the tmpfs: the sandbox's own root is read-only too.
    a.push('--remount-ro', '/', '--chdir', command.home.at);
    return a;
  }

  async run(command: SandboxCommand): Promise<SandboxResult> {
    const l = this.limits;
    // prlimit sets the hard limits that hold between the watcher's looks: no process may map more
    // than the memory limit or write a file larger than the work directory; no core dumps.
    const argv = [
      `--nproc=${l.processes}`,
      `--as=${l.memory}`,
      `--fsize=${l.workdir}`,
      '--core=0',
      '--',
      'bwrap',
      ...this.bwrapArgs(command),
      '--',
      ...command.argv,
    ];
    return watchLimits(command, l, (signal, output, onSpawn) =>
      runCommand('prlimit', argv, {
        output,
        signal,
        timeoutMs: command.timeoutMs,
        // bwrap looks nothing up on PATH; the command inside gets the fixed environment above.
        env: { PATH },
        cwd: '/',
        onSpawn,
        ...(this.user && { uid: this.user.uid, gid: this.user.gid }),
      }),
    );
  }
}

/**
 * No sandbox (`sandbox: none`, set explicitly): commands run as the daemon, on the host, with its
 * environment. The daemon warns at every build and the registry records the builder as unsandboxed.
 */
export class NoSandbox implements Sandbox {
  readonly kind = 'none';
  readonly user = null;
  readonly hostname = null;
  constructor(readonly limits: BuildLimits) {}

  path(bind: Bind, ...rest: string[]): string {
    return join(bind.host, ...rest);
  }

  describe(): string {
    return 'sandbox: none (the build runs as the build daemon, with its powers: configured with `sandbox: none`)';
  }

  run(command: SandboxCommand): Promise<SandboxResult> {
    const [cmd, ...args] = command.argv;
    return watchLimits(command, this.limits, (signal, output, onSpawn) =>
      runCommand(cmd, args, { output, signal, timeoutMs: command.timeoutMs, cwd: command.home.host, onSpawn }),
    );
  }
}
