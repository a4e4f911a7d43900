/**
 * What a user puts into apt to install from a bucket's APT repository (`repos/<bucket>/deb/`, one
 * suite per platform): where to keep the farm's key, and the sources line that trusts it for this
 * repository only.
 */

/** Where the instructions keep the bucket's key on the user's machine (apt's place for local keyrings). */
export function aptKeyPath(bucket: string): string {
  return `/etc/apt/keyrings/pkgforge-${bucket}.asc`;
}

/** The one-line sources entry for a platform's suite of a bucket's repository at `repoUrl`. */
export function aptSourceLine(repoUrl: string, bucket: string, platform: string): string {
  return `deb [signed-by=${aptKeyPath(bucket)}] ${repoUrl} ${platform} main`;
}

/** The name the public key is published under, in the repository's top directory. */
export const APT_KEY_FILE = 'key.asc';

/** What a user runs to trust the bucket's key and add its suites' `lines`. */
export function aptInstallScript(keyPath: string, keyUrl: string, bucket: string, lines: readonly string[]): string {
  return [
    `curl -o ${keyPath} ${keyUrl}`,
    ...lines.map((l) => `echo '${l}' >> /etc/apt/sources.list.d/pkgforge-${bucket}.list`),
    'apt update',
  ].join('\n');
}
