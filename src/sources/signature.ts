import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';

/**
 * Checks a clearsigned file's OpenPGP signature against a keyring with `gpgv` (which trusts exactly
 * the keys in the keyring it is given, nothing else). Returns null for a good signature by one of
 * its keys, or why not, in gpgv's words (`no valid OpenPGP data found`, `No public key`, `BAD
 * signature`).
 */
export async function verifySignature(file: string, keyring: string): Promise<string | null> {
  if (
    !(await access(keyring).then(
      () => true,
      () => false,
    ))
  )
    return `the keyring ${keyring} cannot be read`;
  return new Promise((resolve) => {
    execFile('gpgv', ['--keyring', keyring, file], { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (!err) return resolve(null);
      const said = stderr
        .split('\n')
        .map((l) => l.replace(/^gpgv: /, '').trim())
        .filter(
          (l) => l && !/^(Signature made|using |keyblock resource|Please remember|should be the first file)/.test(l),
        );
      resolve(said.join('; ') || err.message);
    });
  });
}
