import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface DscOptions {
  version?: string;
  buildDepends?: string;
  architecture?: string;
  /** A shell command the package's build runs (debian/rules build). */
  buildCommand?: string;
}

const built = new Map<string, string>();

/**
 * Builds a real Debian source package (format 3.0 (quilt): an orig tarball and a debian tarball)
 * with `dpkg-source -b` and returns the path of its `.dsc`; the files it lists are beside it.
 * Builds are cached per process, keyed on the options.
 */
export function buildDsc(name: string, options: DscOptions = {}): string {
  const key = JSON.stringify([name, options]);
  const cached = built.get(key);
  if (cached) return cached;
  const version = options.version ?? '1.0-1';
  // File names carry the version without its epoch.
  const bare = version.replace(/^[0-9]+:/, '');
  const upstream = bare.replace(/-[^-]*$/, '');
  const top = mkdtempSync(join(tmpdir(), 'pkgforge-dsc-'));
  const src = join(top, `${name}-${upstream}`);
  mkdirSync(join(src, 'debian', 'source'), { recursive: true });
  writeFileSync(join(src, 'README'), `${name} ${version}\n`);
  execFileSync('tar', ['czf', `${name}_${upstream}.orig.tar.gz`, `${name}-${upstream}`], { cwd: top });
  writeFileSync(join(src, 'debian', 'source', 'format'), '3.0 (quilt)\n');
  writeFileSync(
    join(src, 'debian', 'control'),
    [
      `Source: ${name}`,
      'Section: misc',
      'Priority: optional',
      'Maintainer: PkgForge Tests <tests@example.org>',
      ...(options.buildDepends ? [`Build-Depends: ${options.buildDepends}`] : []),
      'Standards-Version: 4.6.2',
      '',
      `Package: ${name}`,
      `Architecture: ${options.architecture ?? 'all'}`,
      `Description: the ${name} test package`,
      ' It installs a README.',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(src, 'debian', 'changelog'),
    `${name} (${version}) unstable; urgency=medium\n\n  * Test release.\n\n -- PkgForge Tests <tests@example.org>  Tue, 01 Dec 2026 00:00:00 +0000\n`,
  );
  // A rules file of dpkg's own tools, without debhelper: a build that needs nothing installed
  // beyond build-essential is the quickest sbuild can do.
  writeFileSync(
    join(src, 'debian', 'rules'),
    [
      '#!/usr/bin/make -f',
      'build build-arch build-indep:',
      ...(options.buildCommand ? [`\t${options.buildCommand.replaceAll('$', '$$')}`] : []),
      'binary: binary-arch binary-indep',
      // The package is built by the target of its architecture; the other does nothing.
      (options.architecture ?? 'all') === 'all' ? 'binary-arch:\nbinary-indep:' : 'binary-indep:\nbinary-arch:',
      `\tinstall -D -m 644 README debian/tmp/usr/share/doc/${name}/README`,
      '\tmkdir -p debian/tmp/DEBIAN',
      '\tdpkg-gencontrol -Pdebian/tmp',
      '\tdpkg-deb --root-owner-group --build debian/tmp ..',
      'clean:',
      '\trm -rf debian/tmp debian/files',
      '.PHONY: build build-arch build-indep binary binary-arch binary-indep clean',
      '',
    ].join('\n'),
  );
  chmodSync(join(src, 'debian', 'rules'), 0o755);
  execFileSync('dpkg-source', ['-b', `${name}-${upstream}`], { cwd: top, stdio: 'ignore' });
  const dsc = join(top, `${name}_${bare}.dsc`);
  built.set(key, dsc);
  return dsc;
}

const agentHomes = new Set<string>();

/**
 * Stops the gpg-agent GnuPG starts for `home` when this test process exits. Left running, each
 * holds inotify instances (128 per user by default) until the farm's own file-system watches fail.
 */
export function stopAgentAtExit(home: string): void {
  if (agentHomes.size === 0)
    process.once('exit', () => {
      for (const h of agentHomes)
        try {
          execFileSync('gpgconf', ['--homedir', h, '--kill', 'gpg-agent'], { stdio: 'ignore' });
        } catch {
          // Gone with its directory, or never started.
        }
    });
  agentHomes.add(home);
}

/** A private GnuPG home with one signing key (no passphrase), for clearsigning `.dsc` files. */
export function makeSigningKey(uid = 'PkgForge Test Signer <signer@example.org>'): { home: string; uid: string } {
  const home = mkdtempSync(join(tmpdir(), 'pkgforge-gnupg-'));
  chmodSync(home, 0o700);
  stopAgentAtExit(home);
  execFileSync(
    'gpg',
    ['--batch', '--homedir', home, '--passphrase', '', '--quick-gen-key', uid, 'ed25519', 'sign', 'never'],
    {
      stdio: 'ignore',
    },
  );
  return { home, uid };
}

/** The clearsigned text of `file`, signed with the key in `home`. */
export function clearsign(file: string, home: string): string {
  return execFileSync('gpg', ['--batch', '--homedir', home, '--clearsign', '--output', '-', file], {
    encoding: 'utf8',
  });
}

/**
 * Builds a real binary Debian package with `dpkg-deb --build`: `/usr/bin/<name>`, a script that
 * prints `said`. Returns its path (name_version_all.deb in a new directory).
 */
export function buildDeb(name: string, version: string, said = `Hello from ${name}`): string {
  const top = mkdtempSync(join(tmpdir(), 'pkgforge-deb-'));
  const root = join(top, 'root');
  mkdirSync(join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
  writeFileSync(join(root, 'usr', 'bin', name), `#!/bin/sh\necho '${said}'\n`);
  chmodSync(join(root, 'usr', 'bin', name), 0o755);
  writeFileSync(
    join(root, 'DEBIAN', 'control'),
    [
      `Package: ${name}`,
      `Version: ${version}`,
      'Architecture: all',
      'Section: misc',
      'Priority: optional',
      'Maintainer: PkgForge Tests <tests@example.org>',
      `Description: the ${name} test package`,
      ' It prints a greeting.',
      '',
    ].join('\n'),
  );
  const deb = join(top, `${name}_${version.replace(/^[0-9]+:/, '')}_all.deb`);
  execFileSync('dpkg-deb', ['--build', '--root-owner-group', root, deb], { stdio: 'ignore' });
  return deb;
}
