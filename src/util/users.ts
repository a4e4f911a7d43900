import { captureCommand } from './child.ts';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

let cache: Map<number, string> | null = null;

/** The user name of a uid from /etc/passwd, or the uid as a string when it has no entry. */
export function userNameOf(uid: number): string {
  if (!cache) {
    cache = new Map();
    try {
      for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
        const [name, , id] = line.split(':');
        if (name && id && !cache.has(Number(id))) cache.set(Number(id), name);
      }
    } catch {
      // No passwd file (a container): fall back to numbers.
    }
  }
  return cache.get(uid) ?? String(uid);
}

export interface UserIds {
  name: string;
  uid: number;
  gid: number;
}

/** A user by name or number, through the system's name service (`getent`), or null when there is none. */
export async function lookupUser(nameOrUid: string): Promise<UserIds | null> {
  const r = await captureCommand('getent', ['passwd', '--', nameOrUid]);
  const line = r.code === 0 ? r.stdout.split('\n')[0] : undefined;
  const [name, , uid, gid] = line?.split(':') ?? [];
  if (!name || uid === undefined || gid === undefined || !/^\d+$/.test(uid) || !/^\d+$/.test(gid)) return null;
  return { name, uid: Number(uid), gid: Number(gid) };
}

/** A group by name, with its gid and the names of its members, or null when there is none. */
export async function lookupGroup(name: string): Promise<{ gid: number; members: string[] } | null> {
  const r = await captureCommand('getent', ['group', '--', name]);
  const [, , gid, members] = r.code === 0 ? (r.stdout.split('\n')[0] ?? '').split(':') : [];
  if (gid === undefined || !/^\d+$/.test(gid)) return null;
  return { gid: Number(gid), members: members ? members.split(',').filter(Boolean) : [] };
}

/**
 * The number of subordinate ids `user` has in /etc/subuid or /etc/subgid (`name:start:count`
 * lines, the name or the uid): what a user namespace of that user may map beyond its own id, which
 * sbuild's unshare mode needs (65536, a whole system's ids).
 */
export async function subordinateIdCount(user: UserIds, file: '/etc/subuid' | '/etc/subgid'): Promise<number> {
  const text = await readFile(file, 'utf8').catch(() => '');
  let count = 0;
  for (const line of text.split('\n')) {
    const [who, , n] = line.trim().split(':');
    if ((who === user.name || who === String(user.uid)) && n && /^\d+$/.test(n)) count += Number(n);
  }
  return count;
}
