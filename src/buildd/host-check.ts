import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseInstance } from '../core/builder-health.ts';
import { isProcessAlive } from '../util/process.ts';
import { DEFAULTS } from '../config/defaults.ts';
import { familyOfBuilder } from '../core/terms.ts';
import { assertOwnerOnlyWritable } from '../util/fs-safe.ts';
import type { TaskDirs } from './attempt.ts';
import type { SandboxSetup } from './sandbox-setup.ts';
import { missingTools, type BuilddSettings } from './setup.ts';

/**
 * Whether an attempt's host (`host[pid]`, as a daemon names itself) is an earlier run of a daemon on
 * this host that is no longer running, or this very process (a container restarted with the same host
 * name gives the same pid again): its lease is not a live one, and its tasks are ours to take over.
 */
export function leftByThisHost(instance: string | null): boolean {
  const holder = instance === null ? null : parseInstance(instance);
  return (
    holder?.pid != null && holder.host === hostname() && (holder.pid === process.pid || !isProcessAlive(holder.pid))
  );
}

/**
 * What stands in the way of building on this host, each in words: the builder command's family
 * against the platform's, the directories (accepted readable and only ours to write, results
 * writable), the configured tools, the sandbox and the builder's own preflight. Shared by the
 * daemon with registry access and the remote one; an empty list means it may claim.
 */
export async function hostProblems(
  ctx: { name: string; dirs: TaskDirs; settings: BuilddSettings },
  me: { platform: string; arch: string; family: string },
): Promise<{ problems: string[]; sandbox: SandboxSetup }> {
  const problems: string[] = [];
  const builds = familyOfBuilder(ctx.settings.builder().name);
  if (builds !== me.family)
    problems.push(
      `its builder command (${ctx.settings.builder().name}) builds ${builds} packages, and the platform ${me.platform} is ${me.family}`,
    );
  for (const [dir, what] of [
    [ctx.dirs.accepted, 'accepted'],
    [ctx.dirs.repos, 'repositories'],
  ] as const) {
    if (dir) await assertOwnerOnlyWritable(dir, what).catch((err: Error) => problems.push(err.message));
  }
  const acceptedOk = await access(ctx.dirs.accepted, constants.R_OK | constants.X_OK).then(
    () => true,
    () => false,
  );
  if (!acceptedOk) problems.push(`the accepted directory '${ctx.dirs.accepted}' cannot be read`);
  const resultsStat = await stat(ctx.dirs.results).catch(() => null);
  if (!resultsStat?.isDirectory()) problems.push(`the results directory '${ctx.dirs.results}' does not exist`);
  else {
    // Two builders in one process (serve, tests) must not share one probe.
    const probe = join(ctx.dirs.results, `.pkgforge-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
    await writeFile(probe, 'test\n').then(
      () => unlink(probe),
      (err: Error) => problems.push(`the results directory '${ctx.dirs.results}' is not writable: ${err.message}`),
    );
  }
  const missing = await missingTools(ctx.settings);
  if (missing.length > 0) problems.push(`missing tools: ${missing.join(', ')}`);
  await mkdir(ctx.dirs.tmpdir, { recursive: true, mode: DEFAULTS.tmpdirMode }).catch((err: Error) =>
    problems.push(`cannot create '${ctx.dirs.tmpdir}': ${err.message}`),
  );
  const sandbox = await ctx.settings.sandbox(ctx.name, me.platform);
  if (sandbox.problem) problems.push(sandbox.problem);
  else if (sandbox.sandbox?.kind === 'bwrap' && ctx.settings.builderNeedsHost)
    problems.push(
      "mock needs root for its chroots and cannot run in the bubblewrap sandbox; set `sandbox: none` for this builder to rely on mock's own isolation (see docs/security.md)",
    );
  if (sandbox.sandbox)
    problems.push(...((await ctx.settings.builder().preflight?.(me.platform, me.arch, sandbox.sandbox)) ?? []));
  return { problems, sandbox };
}
