import { execFile } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { ensureDir } from '../util/fs-safe.ts';

/** The key repositories are signed with: its GnuPG home and fingerprint. */
export interface SigningKey {
  gnupgHome: string;
  fingerprint: string;
}

/** The user id of the key a farm makes for itself. */
export const FARM_KEY_UID = `PkgForge farm signing key <pkgforge@${hostname()}>`;

/**
 * The farm's signing key: `key` (a name or fingerprint) from `gnupgHome` when configured, else the
 * farm's own, made there on first use (ed25519, no passphrase, no expiry). Daemons that ask at
 * once take turns, so exactly one key is made. The home is private (0700): builds never see it
 * (the sandbox hides it with the farm's other directories).
 */
export async function farmSigningKey(gnupgHome: string, key: string | null): Promise<SigningKey> {
  await ensureDir(gnupgHome, 0o700);
  const wanted = key ?? FARM_KEY_UID;
  const found = await fingerprintOf(gnupgHome, wanted);
  if (found) return { gnupgHome, fingerprint: found };
  if (key)
    throw new PkgForgeError(
      ErrorCode.config,
      `The signing key '${key}' (signing_key) is not in ${gnupgHome} (gnupg_home)`,
    );
  const release = await lockfile.lock(gnupgHome, {
    lockfilePath: join(gnupgHome, '.make-key.lock'),
    retries: { retries: 100, minTimeout: 100, maxTimeout: 500 },
    stale: 60_000,
    realpath: false,
  });
  try {
    const made = await fingerprintOf(gnupgHome, wanted);
    if (made) return { gnupgHome, fingerprint: made };
    const r = await gpg(gnupgHome, ['--passphrase', '', '--quick-gen-key', FARM_KEY_UID, 'ed25519', 'sign', 'never']);
    if (r.code !== 0)
      throw new Error(`gpg could not make the farm's signing key: ${r.stderr.trim() || `exit code ${r.code}`}`);
    const fingerprint = await fingerprintOf(gnupgHome, wanted);
    if (!fingerprint) throw new Error(`gpg made no key '${FARM_KEY_UID}' in ${gnupgHome}`);
    return { gnupgHome, fingerprint };
  } finally {
    await release().catch(() => {});
  }
}

/** The signing key's public half, ASCII-armoured, as users import it (`signed-by=`, `gpgkey=`). */
export async function exportPublicKey(key: SigningKey): Promise<string> {
  const r = await gpg(key.gnupgHome, ['--armor', '--export', key.fingerprint]);
  if (r.code !== 0 || !r.stdout.includes('BEGIN PGP PUBLIC KEY BLOCK'))
    throw new Error(`gpg could not export the key ${key.fingerprint}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  return r.stdout;
}

/** The fingerprint of the first secret key matching `name`, or null. */
async function fingerprintOf(gnupgHome: string, name: string): Promise<string | null> {
  const r = await gpg(gnupgHome, ['--with-colons', '--list-secret-keys', '--', name]);
  if (r.code !== 0) return null;
  return r.stdout.match(/^fpr:+([0-9A-F]{40,64}):/m)?.[1] ?? null;
}

/** Runs gpg on the farm's home: its output and its messages apart (an export must not carry warnings). */
function gpg(gnupgHome: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'gpg',
      ['--batch', '--no-tty', '--homedir', gnupgHome, ...args],
      { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: err && !stderr ? err.message : stderr });
      },
    );
  });
}
