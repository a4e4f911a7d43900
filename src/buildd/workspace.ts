import { chmod, chown, mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { captureCommand } from '../util/child.ts';
import { linkOrCopy, removeTree } from '../util/fs-safe.ts';
import { bootId, processStat } from '../util/process.ts';
import type { UserIds } from '../util/users.ts';
import type { Bind, Sandbox } from './sandbox.ts';

/** Where an attempt's build works, as the daemon and as the sandboxed command see it. */
export interface Workspace {
  /** The attempt's directory, the daemon's: everything below is removed when the attempt ends. */
  root: string;
  /** The build's only writable directory (HOME and working directory), owned by the build user. */
  build: Bind;
  /** The job's source packages, read-only. */
  sources: Bind;
  /** Products taken from the build (checked, the daemon's own copies), read-only for checks. */
  products: Bind;
  /** The process groups its commands started (`SandboxCommand.processLog`), for `endLeftovers`. */
  processLog: string;
}

/** In a workspace's root: the daemon that made it (`host[pid] start-time boot-id`), and the process groups its commands started. */
export const OWNER_FILE = '.owner';
const PROCESS_LOG = '.processes';

/** Places inside the sandbox; fixed, so build logs and paths in built files do not depend on the host. */
export const INSIDE = { build: '/build', sources: '/sources', products: '/products' } as const;

/**
 * Makes an attempt's workspace under `base`. When builds run as another user than the daemon, the
 * job's sources are linked (or copied, across file systems) into it, since that user may not be
 * able to reach accepted/; otherwise they are bound from accepted/ directly.
 */
export async function makeWorkspace(
  base: string,
  prefix: string,
  sandbox: Sandbox,
  acceptedJobDir: string,
  files: readonly string[],
): Promise<Workspace> {
  await mkdir(base, { recursive: true, mode: 0o711 });
  const root = await mkdtemp(join(base, prefix));
  // Its owner first: a workspace without one is an earlier run's, to be removed.
  await writeFile(
    join(root, OWNER_FILE),
    `${hostname()}[${process.pid}] ${(await processStat(process.pid))?.startTime ?? 0} ${await bootId()}\n`,
    { mode: 0o600 },
  );
  // Traversable but not listable by the build user: it reaches its own directories by name only.
  await chmod(root, 0o711);
  const build = join(root, 'build');
  await mkdir(build, { mode: 0o700 });
  if (sandbox.user) await chown(build, sandbox.user.uid, sandbox.user.gid);
  let sources = acceptedJobDir;
  if (sandbox.user) {
    sources = join(root, 'sources');
    await mkdir(sources, { mode: 0o755 });
    for (const f of files) await linkOrCopy(join(acceptedJobDir, f), join(sources, f));
  }
  const products = join(root, 'products');
  await mkdir(products, { mode: 0o755 });
  return workspaceAt(root, sources);
}

/** The workspace rooted at `root` (made by makeWorkspace, here or by an earlier run of the daemon). */
export function workspaceAt(root: string, sources = join(root, 'sources')): Workspace {
  return {
    root,
    build: { host: join(root, 'build'), at: INSIDE.build, writable: true },
    sources: { host: sources, at: INSIDE.sources },
    products: { host: join(root, 'products'), at: INSIDE.products },
    processLog: join(root, PROCESS_LOG),
  };
}

/**
 * Removes a workspace. A build may leave directories without write permission (Go's module cache
 * does); those are made writable first when a plain removal fails.
 */
export async function removeWorkspace(ws: Workspace, sandbox: Sandbox): Promise<void> {
  try {
    await removeTree(ws.root);
  } catch {
    if (sandbox.user && process.geteuid?.() !== 0) {
      // A daemon that switched users by capability cannot remove the build user's files itself:
      // the build user empties its own directory, in the sandbox.
      await sandbox.run({
        argv: ['sh', '-c', 'chmod -R u+rwX . 2>/dev/null; find . -mindepth 1 -delete'],
        binds: [ws.build],
        home: ws.build,
        timeoutMs: 10 * 60_000,
        signal: new AbortController().signal,
      });
    } else {
      await captureCommand('chmod', ['-R', 'u+rwX', '--', ws.root]);
    }
    await removeTree(ws.root);
  }
}

/**
 * Whether `user` can reach `dir`: every directory from the root down may be searched by it (mode
 * bits only; ACLs are not looked at). bwrap opens bind sources by path as that user.
 */
export async function canReach(user: UserIds, dir: string): Promise<boolean> {
  let path = resolve(dir);
  for (;;) {
    const st = await stat(path).catch(() => null);
    if (st) {
      const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
      if ((st.mode & bit) === 0) return false;
    }
    if (path === '/') return true;
    path = dirname(path);
  }
}

/** The directory under which a builder's workspaces are made. */
export async function workspaceBase(
  configured: string | null,
  tmpdir: string,
  builder: string,
  user: UserIds | null,
): Promise<string> {
  if (configured) return join(resolve(configured), builder);
  if (!user || (await canReach(user, tmpdir))) return join(tmpdir, builder);
  return join('/var/tmp/pkgforge-builds', builder);
}
