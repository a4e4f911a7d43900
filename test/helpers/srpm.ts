import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A spec for a tiny noarch package; `requires` become BuildRequires. */
export function specFor(
  name: string,
  options: { version?: string; buildRequires?: string[]; summary?: string; description?: string } = {},
): string {
  return [
    `Name: ${name}`,
    `Version: ${options.version ?? '1.0'}`,
    'Release: 1',
    `Summary: ${options.summary ?? `the ${name} test package`}`,
    'License: MIT',
    'BuildArch: noarch',
    ...(options.buildRequires ?? []).map((r) => `BuildRequires: ${r}`),
    '%description',
    options.description ?? `${name} is built by the PkgForge tests.`,
    '%install',
    `mkdir -p %{buildroot}/usr/share/${name} && echo ${name} > %{buildroot}/usr/share/${name}/README`,
    '%files',
    `/usr/share/${name}/README`,
    '',
  ].join('\n');
}

const built = new Map<string, string>();

/**
 * Builds a real source RPM with `rpmbuild -bs` (or a binary one with `-bb`) and returns its path.
 * Builds are cached per process, keyed on the spec text.
 */
export function buildRpm(spec: string, kind: 'source' | 'binary' = 'source'): string {
  const key = `${kind}\n${spec}`;
  const cached = built.get(key);
  if (cached) return cached;
  const top = mkdtempSync(join(tmpdir(), 'pkgforge-rpm-'));
  const specPath = join(top, 'pkg.spec');
  writeFileSync(specPath, spec);
  const out = join(top, 'out');
  mkdirSync(out);
  execFileSync(
    'rpmbuild',
    [
      kind === 'source' ? '-bs' : '-bb',
      '--quiet',
      '--define',
      `_topdir ${top}`,
      '--define',
      `_srcrpmdir ${out}`,
      '--define',
      `_rpmdir ${out}`,
      '--define',
      '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm',
      specPath,
    ],
    { stdio: 'pipe' },
  );
  const file = readdirSync(out).find((f) => f.endsWith('.rpm'));
  if (!file) throw new Error(`rpmbuild produced no RPM for\n${spec}`);
  const path = join(out, file);
  built.set(key, path);
  return path;
}

/** A source RPM of a package with this name. */
export function srpm(name: string, options: Parameters<typeof specFor>[1] = {}): string {
  return buildRpm(specFor(name, options));
}

/** A source RPM whose build prints `tick-1`, `tick-2`… a second apart for `seconds` seconds. */
export const ticking = (name: string, seconds: number) =>
  buildRpm(
    specFor(name).replace('%install', `%build\nfor i in $(seq 1 ${seconds}); do echo tick-$i; sleep 1; done\n%install`),
  );
