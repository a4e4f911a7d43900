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
