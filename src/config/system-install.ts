import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SUBMIT_GROUP, SYSTEM_USERS, systemDirectories } from '../core/system-layout.ts';
import { captureCommand } from '../util/child.ts';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { lookupGroup, lookupUser } from '../util/users.ts';

async function run(command: string, args: string[]): Promise<void> {
  const r = await captureCommand(command, args);
  if (r.code !== 0)
    throw new PkgForgeError(
      ErrorCode.usage,
      `${command} ${args.join(' ')} failed (exit code ${r.code}): ${r.stdout.trim()}`,
    );
}

/**
 * Makes a system install's users, group and directories with their owners and modes; changes only
 * what differs, and returns what it changed, in words. `root` prefixes every path (a test's
 * temporary root); the users are real system users. Needs root.
 */
export async function ensureSystemInstall(root = '/'): Promise<string[]> {
  if ((process.geteuid?.() ?? 0) !== 0)
    throw new PkgForgeError(ErrorCode.usage, '`pkgforge init --system` creates users and sets owners: run it as root');
  const changed: string[] = [];
  if (!(await lookupGroup(SUBMIT_GROUP))) {
    await run('groupadd', ['--system', SUBMIT_GROUP]);
    changed.push(`created the group ${SUBMIT_GROUP}`);
  }
  for (const name of Object.values(SYSTEM_USERS)) {
    if (await lookupUser(name)) continue;
    await run('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--home-dir',
      '/nonexistent',
      '--shell',
      '/usr/sbin/nologin',
      // The build user runs sbuild, whose unshare mode maps a build root's users into these ids.
      ...(name === SYSTEM_USERS.build ? ['--add-subids-for-system'] : []),
      name,
    ]);
    changed.push(`created the user ${name}`);
  }
  if (!(await lookupGroup(SUBMIT_GROUP))?.members.includes(SYSTEM_USERS.web)) {
    await run('usermod', ['--append', '--groups', SUBMIT_GROUP, SYSTEM_USERS.web]);
    changed.push(`added ${SYSTEM_USERS.web} to ${SUBMIT_GROUP}`);
  }
  for (const d of systemDirectories()) {
    const path = join(root, d.path);
    const uid = d.owner === 'root' ? 0 : (await lookupUser(d.owner))!.uid;
    const gid = d.group === 'root' ? 0 : (await lookupGroup(d.group))!.gid;
    let st = await stat(path).catch(() => null);
    if (!st) {
      await mkdir(path, { recursive: true });
      changed.push(`created ${path}`);
      st = await stat(path);
    }
    if (st.uid !== uid || st.gid !== gid) {
      await chown(path, uid, gid);
      changed.push(`${path}: owner ${d.owner}:${d.group}`);
    }
    // chown clears setgid and sticky bits on some systems: the mode is set after it.
    if ((st.mode & 0o7777) !== d.mode || st.uid !== uid || st.gid !== gid) {
      await chmod(path, d.mode);
      if ((st.mode & 0o7777) !== d.mode) changed.push(`${path}: mode ${d.mode.toString(8).padStart(4, '0')}`);
    }
  }
  return changed;
}
