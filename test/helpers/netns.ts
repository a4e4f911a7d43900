import { execFileSync } from 'node:child_process';

/**
 * A network namespace of its own, joined to this host by a veth pair: from inside, only the host
 * end's address is reachable (10.x.y.1), and only on the ports something listens on there. Its
 * loopback is its own, so nothing listening on the host's 127.0.0.1 (the test PostgreSQL) can be
 * reached from inside. Needs root (CI runs as root); a missing `ip` fails, never skips.
 */
export interface NetworkNamespace {
  name: string;
  /** The host's address on the veth pair, which the namespace reaches. */
  hostAddress: string;
  /** Runs a command inside it, in a mount namespace of its own where `hidden` paths are empty tmpfs. */
  prefix(hidden?: string[]): string[];
  /** Whether a TCP connection from inside to `host:port` succeeds. */
  canConnect(host: string, port: number): boolean;
  dispose(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });

export function makeNetns(): NetworkNamespace {
  // Unique per process, and short: interface names are at most 15 bytes.
  const id = process.pid % 60000;
  const name = `pkgf-${id}`;
  const [hostIf, nsIf] = [`pfh${id}`, `pfn${id}`];
  const subnet = `10.${200 + (id >> 14)}.${(id >> 6) & 0xff}.${(id & 0x3f) * 4}`;
  const base = subnet.split('.').map(Number) as [number, number, number, number];
  const hostAddress = `${base[0]}.${base[1]}.${base[2]}.${base[3] + 1}`;
  const nsAddress = `${base[0]}.${base[1]}.${base[2]}.${base[3] + 2}`;
  try {
    ip('netns', 'del', name);
  } catch {
    // none left by an earlier run
  }
  ip('netns', 'add', name);
  ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
  ip('link', 'set', nsIf, 'netns', name);
  ip('addr', 'add', `${hostAddress}/30`, 'dev', hostIf);
  ip('link', 'set', hostIf, 'up');
  ip('-n', name, 'addr', 'add', `${nsAddress}/30`, 'dev', nsIf);
  ip('-n', name, 'link', 'set', nsIf, 'up');
  ip('-n', name, 'link', 'set', 'lo', 'up');
  const inside = ['ip', 'netns', 'exec', name];
  return {
    name,
    hostAddress,
    prefix: (hidden = []) => [
      ...inside,
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      `${hidden.map((p) => `mount -t tmpfs pkgforge-hidden '${p}' && `).join('')}exec "$@"`,
      'sh',
    ],
    canConnect: (host, port) => {
      try {
        execFileSync(...(['ip', ['netns', 'exec', name, 'bash', '-c', `exec 3<>/dev/tcp/${host}/${port}`]] as const), {
          stdio: 'pipe',
          timeout: 5000,
        });
        return true;
      } catch {
        return false;
      }
    },
    dispose: () => {
      try {
        ip('netns', 'del', name);
      } finally {
        try {
          ip('link', 'del', hostIf);
        } catch {
          // gone with the namespace's end
        }
      }
    },
  };
}
