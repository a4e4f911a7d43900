import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { buildRootFile, mmdebstrapArgs, mmdebstrapVersion } from '../../src/buildd/buildroot.ts';
import { hostAptMirror } from '../../src/config/apt-sources.ts';
import { lookupUser, subordinateIdCount } from '../../src/util/users.ts';
import { aptOptions } from './apt.ts';
import { pkgforge } from './farm.ts';

/**
 * What the Debian build tests share across runs, made once per machine: a build root made with
 * the farm's own `pkgforge buildroot create` (a minute or more) and GNU hello's source from the
 * archive. Kept by content: the directory's name is a hash of what decides it.
 */
const CACHE = '/var/tmp/pkgforge-test-cache';

/**
 * Runs `make` with the cache's lock held, so test files running at once make a thing once: the
 * lock is a directory holding its owner's pid, taken over when that process is gone.
 */
async function withCacheLock<T>(make: () => Promise<T>): Promise<T> {
  mkdirSync(CACHE, { recursive: true, mode: 0o755 });
  const lock = join(CACHE, '.lock');
  const deadline = Date.now() + 20 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner: number | null = null;
      try {
        owner = Number(readFileSync(join(lock, 'pid'), 'utf8').trim()) || null;
      } catch {
        // Its owner is writing its pid this very moment.
      }
      if (Date.now() > deadline) throw new Error(`the test cache ${CACHE} stayed locked by ${owner} for 20 minutes`);
      if (owner !== null && !alive(owner)) rmSync(lock, { recursive: true, force: true });
      // The other test file makes it for minutes; it says nothing when done but removing the lock.
      else await sleep(500);
    }
  }
  try {
    return await make();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The user .ci/run makes for the Debian builds: unprivileged, with a range of subordinate ids. */
export const SBUILD_USER = 'pkgforge-sbuild';

/** The Debian mirror the tests use: this host's apt mirror (the tests need it; no mirror, no test). */
export async function testMirror(): Promise<string> {
  const mirror = await hostAptMirror();
  if (!mirror) throw new Error('the Debian build tests need a Debian mirror in this host’s apt sources');
  return mirror;
}

/**
 * A directory of build roots holding deb12's for x86_64, made by `pkgforge buildroot create` the
 * first time and reused while mmdebstrap, its arguments and the mirror stay the same.
 */
export async function testBuildRoots(): Promise<string> {
  const mirror = await testMirror();
  const key = createHash('sha256')
    .update(JSON.stringify([await mmdebstrapVersion(), mmdebstrapArgs('bookworm', 'x86_64', mirror, 'OUT')]))
    .digest('hex')
    .slice(0, 16);
  const dir = join(CACHE, `buildroots-${key}`);
  if (existsSync(buildRootFile(dir, 'deb12', 'x86_64'))) return dir;
  return withCacheLock(async () => {
    if (existsSync(buildRootFile(dir, 'deb12', 'x86_64'))) return dir;
    const making = `${dir}.partial-${process.pid}`;
    rmSync(making, { recursive: true, force: true });
    const r = await pkgforge(['buildroot', 'create', 'deb12', '--arch', 'x86_64', '--mirror', mirror], {
      PKGFORGE_HOME: making,
      HOME: making,
      PKGFORGE_BUILDROOTS: making,
    });
    if (r.code !== 0) throw new Error(`pkgforge buildroot create deb12 failed:\n${r.stdout}${r.stderr}`);
    renameSync(making, dir);
    return dir;
  });
}

/** GNU hello's Debian source package (hello_2.10-3.dsc and its files), from the archive's deb-src. */
export async function helloSource(): Promise<string> {
  const mirror = await testMirror();
  const dir = join(CACHE, `hello-${createHash('sha256').update(mirror).digest('hex').slice(0, 16)}`);
  const dsc = () => readdirSync(dir).find((f) => /^hello_.*\.dsc$/.test(f));
  if (existsSync(dir) && dsc()) return join(dir, dsc()!);
  return withCacheLock(async () => {
    if (existsSync(dir) && dsc()) return join(dir, dsc()!);
    const apt = `${dir}.apt-${process.pid}`;
    for (const d of ['lists/partial', 'cache/archives/partial', 'etc', 'get'])
      mkdirSync(join(apt, d), { recursive: true });
    writeFileSync(
      join(apt, 'etc', 'sources.list'),
      `deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} bookworm main\n`,
    );
    const options = aptOptions(apt);
    execFileSync('apt-get', [...options, '-qq', 'update'], { stdio: 'ignore' });
    execFileSync('apt-get', [...options, '-qq', 'source', '--download-only', 'hello'], {
      cwd: join(apt, 'get'),
      stdio: 'ignore',
    });
    rmSync(dir, { recursive: true, force: true });
    renameSync(join(apt, 'get'), dir);
    rmSync(apt, { recursive: true, force: true });
    return join(dir, dsc()!);
  });
}

/** The build user, checked: it must exist with subordinate ids (fails, never skips, when CI did not make it). */
export async function sbuildUser(): Promise<string> {
  const user = await lookupUser(SBUILD_USER);
  if (!user || (await subordinateIdCount(user, '/etc/subuid')) < 65536)
    throw new Error(
      `the Debian build tests need the user ${SBUILD_USER} with 65536 subordinate ids (.ci/run makes it: useradd --system --add-subids-for-system ${SBUILD_USER})`,
    );
  return SBUILD_USER;
}
