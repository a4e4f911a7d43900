import { chmod, chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { limitsFor, type Config } from '../config/load-config.ts';
import { findExecutable } from '../util/child.ts';
import { messageOf } from '../util/errors.ts';
import { lookupUser, type UserIds } from '../util/users.ts';
import { BwrapSandbox, NoSandbox, type Sandbox } from './sandbox.ts';
import { canReach, workspaceBase } from './workspace.ts';

/** A builder's sandbox, ready, or why it cannot be had. */
export type SandboxSetup =
  { sandbox: Sandbox; workspaces: string; problem: null } | { sandbox: null; workspaces: null; problem: string };

/** The user builds run as when the daemon is root and none is configured, if it exists; else `nobody`. */
export const BUILD_USER = 'pkgforge-build';

/**
 * Who builds run as. A daemon running as root never builds as root: it switches to the configured
 * user, or `pkgforge-build`, or `nobody`. A daemon that is not root builds as itself, inside a
 * user namespace; it cannot switch to another user.
 */
async function buildUser(configured: string | null): Promise<UserIds | null | string> {
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0) {
    if (!configured) return null;
    const u = await lookupUser(configured);
    if (u?.uid === euid) return null;
    if (!u) return `the sandbox_user '${configured}' does not exist`;
    // A system install's daemon user may be given just these (systemd: AmbientCapabilities=).
    if (await hasCapabilities(['chown', 'setgid', 'setuid'])) return u;
    return `builds can run as the user '${configured}' only when the build daemon runs as root or holds CAP_SETUID, CAP_SETGID and CAP_CHOWN (it runs as uid ${euid}); leave sandbox_user unset to build as the daemon's own user`;
  }
  const u = configured
    ? await lookupUser(configured)
    : ((await lookupUser(BUILD_USER)) ?? (await lookupUser('nobody')));
  if (!u)
    return configured
      ? `the sandbox_user '${configured}' does not exist`
      : `neither the user '${BUILD_USER}' nor 'nobody' exists (create one with \`pkgforge init --system\`)`;
  if (u.uid === 0 || u.gid === 0) return `the sandbox_user '${u.name}' is root; builds never run as root`;
  return u;
}

const CAPABILITY_BITS = { chown: 0, setgid: 6, setuid: 7 } as const;

/** Whether this process holds these capabilities (its effective set, from /proc/self/status). */
async function hasCapabilities(names: (keyof typeof CAPABILITY_BITS)[]): Promise<boolean> {
  const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
  const hex = status.match(/^CapEff:\s*([0-9a-f]+)$/m)?.[1];
  if (!hex) return false;
  const eff = BigInt(`0x${hex}`);
  return names.every((n) => (eff >> BigInt(CAPABILITY_BITS[n])) & 1n);
}

/** The farm's directories, which a build must not see even inside the read-only root. */
function farmPaths(config: Config): string[] {
  const paths = [
    config.incoming,
    config.accepted,
    config.results,
    config.repos,
    config.signing.gnupgHome,
    config.tmpdir,
    config.logdir,
    config.layout.configDir,
  ];
  if (config.layout.home) paths.push(config.layout.home);
  if (config.registry.type === 'sqlite') paths.push(dirname(config.registry.path));
  // A registry given as a YAML file holds its credentials.
  if (config.registryFile) paths.push(config.registryFile);
  return [...new Set(paths)];
}

/**
 * Makes the sandbox a builder of `platform` builds in, and proves it works by running `true` in
 * it. `sandbox: none` must be chosen explicitly; the default is bubblewrap, and a host where it
 * cannot start gives a problem naming the cause (the daemon then refuses to start).
 */
export async function setUpSandbox(config: Config, builder: string, platform: string): Promise<SandboxSetup> {
  const b = config.buildd;
  const limits = limitsFor(b, platform);
  const fail = (problem: string): SandboxSetup => ({ sandbox: null, workspaces: null, problem });
  if (b.sandbox === 'none') {
    return {
      sandbox: new NoSandbox(limits),
      workspaces: await workspaceBase(b.sandboxDir, config.tmpdir, builder, null),
      problem: null,
    };
  }
  for (const tool of ['bwrap', 'prlimit', 'du']) {
    if (!(await findExecutable(tool)))
      return fail(
        `the sandbox needs '${tool}', which is not installed (Debian: apt-get install ${tool === 'bwrap' ? 'bubblewrap' : 'util-linux coreutils'}), or set \`sandbox: none\` to build unsandboxed`,
      );
  }
  const user = await buildUser(b.sandboxUser);
  if (typeof user === 'string') return fail(user);
  const sandbox = new BwrapSandbox({ user, limits, hide: farmPaths(config) });
  const workspaces = await workspaceBase(b.sandboxDir, config.tmpdir, builder, user);
  try {
    await mkdir(workspaces, { recursive: true, mode: 0o711 });
  } catch (err) {
    return fail(`cannot create the workspace directory '${workspaces}': ${messageOf(err)}`);
  }
  if (user && !(await canReach(user, workspaces)))
    return fail(
      `the build user '${user.name}' cannot reach the workspace directory '${workspaces}'; set sandbox_dir to a directory it can reach`,
    );
  const probe = await trySandbox(sandbox, workspaces);
  return probe ? fail(probe) : { sandbox, workspaces, problem: null };
}

/** Runs `true` in the sandbox; returns why it failed, with bwrap's own words, or null. */
async function trySandbox(sandbox: Sandbox, base: string): Promise<string | null> {
  const dir = await mkdtemp(`${base}/.probe-`);
  if (sandbox.user) await chown(dir, sandbox.user.uid, sandbox.user.gid);
  else await chmod(dir, 0o700);
  let said = '';
  const output = new Writable({ write: (c: Buffer, _e, done) => ((said += c.toString()), done()) });
  try {
    const home = { host: dir, at: '/build', writable: true };
    const r = await sandbox.run({
      argv: ['true'],
      binds: [home],
      home,
      output,
      timeoutMs: 30_000,
      signal: new AbortController().signal,
    });
    if (r.code === 0) return null;
    const why = said.trim().split('\n').at(-1) || r.error?.message || `exit code ${r.code}`;
    return `the bubblewrap sandbox cannot start on this host: ${why} (user namespaces may be disabled: sysctl kernel.unprivileged_userns_clone, user.max_user_namespaces); set \`sandbox: none\` to build unsandboxed`;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
