import { readFileSync } from 'node:fs';

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
