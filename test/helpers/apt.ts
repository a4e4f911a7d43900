import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A real apt with its own lists and cache, reading one repository line (`deb [signed-by=K] URL suite main`). */
export interface AptClient {
  dir: string;
  options: string[];
  /** What `apt-get update` said, warnings and errors included. */
  update: string;
}

/**
 * apt's options for a client of its own in `dir` (etc/sources.list, lists/, cache/), touching none
 * of the host's lists, locks or sources. Run as root, it downloads as root: the test's directories
 * are not apt's download user's.
 */
export function aptOptions(dir: string): string[] {
  return [
    '-o',
    `Dir::Etc::sourcelist=${join(dir, 'etc', 'sources.list')}`,
    '-o',
    'Dir::Etc::sourceparts=-',
    '-o',
    `Dir::State::Lists=${join(dir, 'lists')}`,
    '-o',
    `Dir::Cache=${join(dir, 'cache')}`,
    '-o',
    'Debug::NoLocking=1',
    '-o',
    'APT::Sandbox::User=root',
  ];
}

export async function aptClient(under: string, line: string): Promise<AptClient> {
  const dir = mkdtempSync(join(under, 'apt-client-'));
  for (const d of ['lists/partial', 'cache/archives/partial', 'etc']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'etc', 'sources.list'), `${line}\n`);
  const options = aptOptions(dir);
  const update = await run('apt-get', [...options, 'update'], { cwd: dir }).catch(
    (err: { stderr: string; stdout: string }) => err,
  );
  return { dir, options, update: `${update.stdout}${update.stderr}` };
}

/** Downloads the package `name` with the client, unpacks it, and returns the path of what it unpacked to. */
export async function downloadAndUnpack(client: AptClient, name: string): Promise<string> {
  await run('apt-get', [...client.options, 'download', name], { cwd: client.dir });
  const deb = readdirSync(client.dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'))!;
  const unpacked = join(client.dir, `unpacked-${name}`);
  execFileSync('dpkg-deb', ['-x', join(client.dir, deb), unpacked]);
  return unpacked;
}
