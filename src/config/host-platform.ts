import { readFileSync } from 'node:fs';
import { arch as nodeArch } from 'node:os';

/** The platform name for a distribution from /etc/os-release, in the original's style (`el9`, `f40`, `deb12`). */
export function platformNameFromOsRelease(text: string): string | null {
  const field = (k: string) => text.match(new RegExp(`^${k}="?([^"\\n]*)"?$`, 'm'))?.[1] ?? '';
  const id = field('ID').toLowerCase();
  const like = field('ID_LIKE').toLowerCase();
  const major = field('VERSION_ID').split('.')[0] ?? '';
  if (!major || !/^\d+$/.test(major)) return null;
  if (id === 'fedora') return `f${major}`;
  if (['rhel', 'centos', 'rocky', 'almalinux', 'ol', 'scientific'].includes(id) || /\brhel\b/.test(like))
    return `el${major}`;
  if (id === 'debian') return `deb${major}`;
  if (id === 'ubuntu') return `ubuntu${major}`;
  if (/^(opensuse|sles)/.test(id)) return `sl${major}`;
  return `${id.replace(/[^a-z0-9]/g, '').slice(0, 12)}${major}`;
}

/** The RPM name of this machine's architecture. */
export function hostArch(): string {
  const a = nodeArch();
  return (
    ({ x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[
      a
    ] ?? a
  );
}

/** This host's platform: the configured name, else one read from /etc/os-release, else `local`. */
export function detectHostPlatform(configured: string | null): { name: string; arch: string } {
  if (configured) return { name: configured, arch: hostArch() };
  let name: string | null = null;
  try {
    name = platformNameFromOsRelease(readFileSync('/etc/os-release', 'utf8'));
  } catch {
    // No os-release: fall through.
  }
  return { name: name ?? 'local', arch: hostArch() };
}
