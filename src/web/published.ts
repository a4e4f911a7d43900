import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';

/** A binary package in a repository: its name, version-release and architecture, and its file. */
export interface PublishedPackage {
  name: string;
  version: string;
  arch: string;
  file: string;
  /** When it was published (the file's time), ms. */
  publishedAt: number | null;
}

/** rpmbuild's file names: name-version-release.arch.rpm (names may hold dashes, versions may not). */
const RPM_FILE = /^(.+)-([^-]+-[^-]+)\.([^.]+)\.rpm$/;

/**
 * The binary RPMs a yum repository directory holds, newest first: every version stays published
 * (dnf picks the newest), so all are listed.
 */
export async function yumPackages(repo: string): Promise<PublishedPackage[]> {
  const found: PublishedPackage[] = [];
  for (const file of await readdir(repo).catch(() => [] as string[])) {
    const m = RPM_FILE.exec(file);
    if (!m || file.startsWith('.') || file.endsWith('.src.rpm')) continue;
    const st = await stat(join(repo, file)).catch(() => null);
    if (!st?.isFile()) continue;
    found.push({ name: m[1]!, version: m[2]!, arch: m[3]!, file, publishedAt: st.mtimeMs });
  }
  return found.sort((a, b) => (b.publishedAt ?? 0) - (a.publishedAt ?? 0) || (a.name < b.name ? -1 : 1));
}

/**
 * The binary packages of one suite of a bucket's APT repository, read from its `Packages` indexes
 * (streamed, line by line): apt's view of it, one version per package and architecture.
 */
export async function aptPackages(repos: string, bucket: string, suite: string): Promise<PublishedPackage[]> {
  const main = join(repos, bucket, 'deb', 'dists', suite, 'main');
  const found: PublishedPackage[] = [];
  for (const dir of await readdir(main).catch(() => [] as string[])) {
    if (!dir.startsWith('binary-')) continue;
    const plain = join(main, dir, 'Packages');
    const gz = `${plain}.gz`;
    const source = (await stat(plain).catch(() => null))
      ? createReadStream(plain)
      : (await stat(gz).catch(() => null))
        ? createReadStream(gz).pipe(createGunzip())
        : null;
    if (!source) continue;
    let entry: Partial<Record<'Package' | 'Version' | 'Architecture' | 'Filename', string>> = {};
    const flush = () => {
      if (entry.Package && entry.Version)
        found.push({
          name: entry.Package,
          version: entry.Version,
          arch: entry.Architecture ?? '',
          file: entry.Filename?.split('/').pop() ?? '',
          publishedAt: null,
        });
      entry = {};
    };
    for await (const line of createInterface({ input: source, crlfDelay: Infinity })) {
      if (line === '') flush();
      const m = /^(Package|Version|Architecture|Filename): (.*)$/.exec(line);
      if (m) entry[m[1] as keyof typeof entry] = m[2]!;
    }
    flush();
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
