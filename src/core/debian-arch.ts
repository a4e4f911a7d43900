import type { Target } from './targets.ts';

/** Debian's names for the architectures platforms are registered with (RPM's names), where they differ. */
const DEBIAN_ARCH: Readonly<Record<string, string>> = {
  x86_64: 'amd64',
  aarch64: 'arm64',
  i686: 'i386',
  i586: 'i386',
  ppc64le: 'ppc64el',
  armv7hl: 'armhf',
};

/** Debian's name for an architecture (`x86_64` is `amd64`); one already Debian's is kept. */
export function debianArch(arch: string): string {
  return DEBIAN_ARCH[arch] ?? arch;
}

/** The architecture an `Architecture: all` package builds on, of a platform's: amd64 first, then by name. */
function preferredArch(archs: readonly string[]): string {
  return [...archs].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))[0]!;
}
const rank = (arch: string) => (debianArch(arch) === 'amd64' ? 0 : 1);

/**
 * Which of a Debian job's selected targets its packages build on, from each `.dsc`'s Architecture
 * field: `any` (or a wildcard such as `linux-any`) on every selected arch; named architectures on
 * those; `all` once per platform (on one arch, as a noarch package needs only one build). A job's
 * targets are the union over its packages, in the selection's order.
 */
export function debianTargets(architectures: readonly (readonly string[])[], selected: readonly Target[]): Target[] {
  const keep = new Set<Target>();
  const byPlatform = new Map<string, Target[]>();
  for (const t of selected) byPlatform.set(t.platform, [...(byPlatform.get(t.platform) ?? []), t]);
  for (const list of architectures) {
    for (const t of selected) {
      const arch = debianArch(t.arch);
      if (list.some((a) => a !== 'all' && (a === arch || a.endsWith('any')))) keep.add(t);
    }
    if (list.includes('all'))
      for (const targets of byPlatform.values()) {
        const arch = preferredArch(targets.map((t) => t.arch));
        keep.add(targets.find((t) => t.arch === arch)!);
      }
  }
  return selected.filter((t) => keep.has(t));
}
