/**
 * What a user puts into dnf or yum to install from a bucket's yum repository
 * (`repos/<bucket>/<platform>/<arch>/`): its `.repo` file.
 */

/** The name the public key of signed packages is published under, in the repository's directory. */
export const RPM_KEY_FILE = 'RPM-GPG-KEY-pkgforge';

/**
 * A generation of a yum repository's metadata, `.meta-<time>-<random>`, which `repodata` (a
 * symbolic link) points into: the createrepo publisher makes them, the web server serves them only
 * through `repodata`.
 */
export const METADATA_GENERATION = /^\.meta-[0-9a-z]+-[0-9a-f]+$/;

/** The repository's id in dnf, and the name of its `.repo` file (without `.repo`). */
export function yumRepoId(bucket: string, platform: string, arch: string): string {
  return `pkgforge-${bucket}-${platform}-${arch}`;
}

/**
 * The `.repo` file of one platform/arch of a bucket whose repositories are at `reposUrl`
 * (`https://farm.example.org/repos`, or `file:///srv/pkgforge/repos`). Signed packages are
 * checked with the key published beside them; unsigned ones cannot be, and the file says so.
 */
export function yumRepoFile(reposUrl: string, bucket: string, platform: string, arch: string, signed: boolean): string {
  const baseurl = `${reposUrl}/${bucket}/${platform}/${arch}`;
  return [
    `[${yumRepoId(bucket, platform, arch)}]`,
    `name=PkgForge ${bucket} ${platform} ${arch}`,
    `baseurl=${baseurl}`,
    'enabled=1',
    // The metadata changes with every build: dnf should look again soon rather than after 48 hours.
    'metadata_expire=5m',
    ...(signed
      ? ['gpgcheck=1', `gpgkey=${baseurl}/${RPM_KEY_FILE}`]
      : ['# the packages of this repository are not signed (no rpmsign signer)', 'gpgcheck=0']),
    '',
  ].join('\n');
}

/** What a user runs to add the repository (its `.repo` file at `repoFileUrl`) and install `names`. */
export function yumInstallScript(id: string, repoFileUrl: string, names: readonly string[] = []): string {
  return [
    `curl -o /etc/yum.repos.d/${id}.repo ${repoFileUrl}`,
    ...(names.length > 0 ? [`dnf install ${names.join(' ')}`] : []),
  ].join('\n');
}
