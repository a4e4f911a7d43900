import type { PackageFamily, PlatformTarget } from './terms.ts';

/** One platform/arch pair a task is registered for. */
export interface Target {
  platform: string;
  arch: string;
}

const lower = (s: string) => s.toLowerCase();
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Which of the active platforms a job's filters select: the original's exact rules (§2.3).
 * `auto` and `all` are keywords (matched exactly); names match case-insensitively; `!name` removes;
 * unknown names are ignored; a list of negations only starts from the `auto` set.
 */
export function selectTargets(
  candidates: readonly PlatformTarget[],
  platforms: readonly string[],
  archs: readonly string[],
  family: PackageFamily,
): Target[] {
  // Only platforms that build the job's kind of package; the filters apply among them.
  const available = candidates.filter((p) => p.family === family);
  const all = available.map((p) => p.name);
  const auto = available.filter((p) => p.auto).map((p) => p.name);
  const archsOf = new Map<string, string[]>();
  for (const p of available) archsOf.set(p.name, [...(archsOf.get(p.name) ?? []), p.arch]);

  const wanted: Target[] = [];
  for (const name of selectPlatformNames(all, auto, platforms)) {
    for (const arch of selectArchs(archsOf.get(name) ?? [], archs)) wanted.push({ platform: name, arch });
  }
  return wanted;
}

function selectPlatformNames(all: string[], auto: string[], platforms: readonly string[]): string[] {
  const additions = platforms.filter((p) => !p.startsWith('!'));
  const deletions = platforms.filter((p) => p.startsWith('!')).map((p) => lower(p.slice(1)));
  let selected: string[];
  if (additions.length === 0) {
    selected = auto;
  } else {
    selected = [];
    for (const a of additions) {
      if (a === 'all') selected.push(...all);
      else if (a === 'auto') selected.push(...auto);
      else selected.push(...all.filter((n) => lower(n) === lower(a)));
    }
  }
  const result = new Set(selected.filter((n) => !deletions.includes(lower(n))));
  return [...result].sort(byString);
}

function selectArchs(available: string[], archs: readonly string[]): string[] {
  const additions = archs.filter((a) => !a.startsWith('!'));
  const deletions = archs.filter((a) => a.startsWith('!')).map((a) => lower(a.slice(1)));
  let selected: string[];
  if (additions.length === 0 || additions.includes('all')) {
    selected = available;
  } else {
    const wanted = additions.map(lower);
    selected = available.filter((m) => wanted.includes(lower(m)));
  }
  const result = new Set(selected.filter((a) => !deletions.includes(lower(a))));
  return [...result].sort(byString);
}

/** Names a job's filters give that match no platform or arch, or only inactive ones. */
export function filterWarnings(
  job: { platforms: readonly string[]; archs: readonly string[]; family: PackageFamily },
  platforms: readonly { name: string; arch: string; active: boolean; family: PackageFamily }[],
): string[] {
  const warnings: string[] = [];
  const lower = (s: string) => s.toLowerCase();
  for (const p of job.platforms.map((x) => x.replace(/^!/, ''))) {
    if (p === 'auto' || p === 'all') continue;
    const named = platforms.filter((x) => lower(x.name) === lower(p));
    const known = named.filter((x) => x.family === job.family);
    if (named.length > 0 && known.length === 0)
      warnings.push(`platform '${p}' builds ${named[0]!.family} packages, and this job's are ${job.family}`);
    else if (known.length === 0) warnings.push(`platform '${p}' is unknown`);
    else if (!known.some((x) => x.active)) warnings.push(`platform '${p}' is not active`);
  }
  for (const a of job.archs.map((x) => x.replace(/^!/, ''))) {
    if (a === 'all') continue;
    const known = platforms.filter((x) => lower(x.arch) === lower(a));
    if (known.length === 0) warnings.push(`architecture '${a}' is unknown`);
    else if (!known.some((x) => x.active)) warnings.push(`architecture '${a}' has no active platform`);
  }
  return warnings;
}

/**
 * What `pkgforge submit` warns of, given the platforms the farm has: names that match nothing or
 * nothing active (filterWarnings), and above all filters that select no active platform at all, a
 * job that would be accepted and never build.
 */
export function submitWarnings(
  job: { platforms: readonly string[]; archs: readonly string[]; family: PackageFamily },
  platforms: readonly (PlatformTarget & { active: boolean })[],
): string[] {
  const warnings = filterWarnings(job, platforms);
  if (
    selectTargets(
      platforms.filter((p) => p.active),
      job.platforms,
      job.archs,
      job.family,
    ).length === 0
  ) {
    const filters = [
      `platforms: ${job.platforms.length > 0 ? job.platforms.join(',') : 'auto'}`,
      ...(job.archs.length > 0 ? [`archs: ${job.archs.join(',')}`] : []),
    ].join('; ');
    warnings.push(
      `the job's filters (${filters}) select no active ${job.family} platform of this farm: it will not be built anywhere`,
    );
  }
  return warnings;
}
