import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { RegistryConfig } from '../../src/config/load-config.ts';
import type { IncomingContext } from '../../src/incoming/process-entry.ts';
import { submitJob, type SubmitRequest } from '../../src/incoming/submit-job.ts';
import { addPlatform, changePlatform } from '../../src/registry/platforms.ts';
import { silentLog } from '../../src/util/log.ts';
import { makeRegistry, type Dialect, type TestRegistry } from './registries.ts';

/** A farm's directories and registry in a temporary place. */
export interface TestFarm extends TestRegistry {
  root: string;
  incoming: string;
  accepted: string;
  results: string;
  /**
   * Where its builds get their workspaces (`sandbox_dir`): its own, so farms of tests running at
   * once never share one, and reachable by the build user a root daemon switches to.
   */
  builds: string;
  ctx(overrides?: Partial<IncomingContext>): IncomingContext;
  dispose(): Promise<void>;
}

export async function makeFarm(dialect: Dialect): Promise<TestFarm> {
  const reg = await makeRegistry(dialect);
  const root = mkdtempSync(join(tmpdir(), 'pkgforge-farm-'));
  const [incoming, accepted, results] = ['incoming', 'accepted', 'results'].map((d) => join(root, d)) as [
    string,
    string,
    string,
  ];
  for (const d of [incoming, accepted, results]) mkdirSync(d);
  const builds = mkdtempSync('/var/tmp/pkgforge-test-builds-');
  chmodSync(builds, 0o711);
  return {
    ...reg,
    root,
    incoming,
    accepted,
    results,
    builds,
    ctx: (overrides = {}) => ({
      registry: reg.registry,
      incoming,
      accepted,
      waitForJobMs: 300_000,
      log: silentLog,
      retry: { attempts: 2, delayMs: 10 },
      ...overrides,
    }),
    dispose: async () => {
      await reg.dispose();
      rmSync(root, { recursive: true, force: true });
      rmSync(builds, { recursive: true, force: true });
    },
  };
}

/**
 * Submits `files` as job `id` into the farm's incoming directory, as `pkgforge submit` does, to
 * bucket `devel` with no filters or reports unless `extra` says otherwise.
 */
export function submitTo(
  farm: Pick<TestFarm, 'incoming'>,
  id: string,
  files: string[],
  extra: Partial<SubmitRequest> = {},
) {
  return submitJob({
    files,
    target: farm.incoming,
    bucket: 'devel',
    platforms: [],
    archs: [],
    report: [],
    id,
    submitter: null,
    ...extra,
  });
}

/** Adds platforms as `name/arch[*]` (a star makes it auto), all active. */
export async function addPlatforms(farm: TestRegistry, ...specs: string[]): Promise<void> {
  for (const spec of specs) {
    const auto = spec.endsWith('*');
    const [name, arch] = spec.replace('*', '').split('/') as [string, string];
    await addPlatform(farm.registry.db, name, arch);
    await changePlatform(farm.registry.db, name, arch, 'activate');
    if (auto) await changePlatform(farm.registry.db, name, arch, 'setauto');
  }
}

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const COMPILED = join(ROOT, 'dist', 'pkgforge.js');

function newestUnder(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestUnder(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The bundled program is newer than every source file (scripts/test.sh builds it). */
const BUILT = existsSync(COMPILED) && statSync(COMPILED).mtimeMs >= newestUnder(join(ROOT, 'src'));

/**
 * How to start the real `pkgforge`: the bundled program when it is up to date (it starts several
 * times faster), else the sources through tsx, so a test run by itself never runs stale code.
 */
export const PKGFORGE_ARGS: readonly string[] = BUILT ? [join(ROOT, 'bin', 'pkgforge.js')] : ['--import', 'tsx', MAIN];

/**
 * How to start a test helper that runs as a process (test/helpers/<name>.ts): its bundle from
 * scripts/build-tests.mjs when that is newer than every source and test file, else through tsx.
 */
export function helperArgs(name: string): string[] {
  const bundled = join(ROOT, 'test-output', 'bundle', 'test', 'helpers', `${name}.mjs`);
  const newest = Math.max(newestUnder(join(ROOT, 'src')), newestUnder(join(ROOT, 'test')));
  return existsSync(bundled) && statSync(bundled).mtimeMs >= newest
    ? [bundled]
    : ['--import', 'tsx', join(ROOT, 'test', 'helpers', `${name}.ts`)];
}

/** The project's directory, for tests that run its npm scripts. */
export const PROJECT_ROOT = ROOT;

/** Builds the bundled program when it is older than the sources: `npm start` runs only the bundle. */
export async function ensureBuilt(): Promise<void> {
  if (!(existsSync(COMPILED) && statSync(COMPILED).mtimeMs >= newestUnder(join(ROOT, 'src'))))
    await run(process.execPath, [join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT });
}

/** Runs the real `pkgforge` program (from source) with a farm's environment. */
export async function pkgforge(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...PKGFORGE_ARGS, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export function registryEnv(config: RegistryConfig): string {
  return config.type === 'sqlite' ? `sqlite:${config.path}` : config.connectionString!;
}

/**
 * The environment that points a `pkgforge` process at this farm: its data directory, registry and
 * directories (repositories in repos/), with `extra` variables over them.
 */
export function farmEnv(farm: TestFarm, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PKGFORGE_HOME: farm.root,
    HOME: farm.root,
    PKGFORGE_REGISTRY: registryEnv(farm.config),
    PKGFORGE_INCOMING: farm.incoming,
    PKGFORGE_ACCEPTED: farm.accepted,
    PKGFORGE_RESULTS: farm.results,
    PKGFORGE_REPOS: join(farm.root, 'repos'),
    PKGFORGE_SANDBOX_DIR: farm.builds,
    ...extra,
  };
}

/** A `pkgforge` daemon started from source, whose output a test can wait on. */
export interface PkgforgeChild {
  child: ChildProcess;
  /** Its stdout and stderr together, as they arrived. */
  output(): string;
  /** Its stdout alone. */
  stdout(): string;
  /** Resolves once the output matches (rejects if the process exits first). */
  until(re: RegExp): Promise<void>;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
}

/** Starts the real `pkgforge`; `prefix` runs it through another command (`ip netns exec NS`). */
export function spawnPkgforge(args: string[], env: Record<string, string>, prefix: string[] = []): PkgforgeChild {
  const argv = [...prefix, process.execPath, ...PKGFORGE_ARGS, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let stdout = '';
  const listeners = new Set<() => void>();
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  for (const s of [child.stdout!, child.stderr!])
    s.on('data', (d: Buffer) => ((out += d.toString()), listeners.forEach((l) => l())));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    stdout: () => stdout,
    exited,
    until: (re) =>
      new Promise((resolve, reject) => {
        const check = () => re.test(out) && (listeners.delete(check), resolve());
        listeners.add(check);
        void exited.then(() =>
          re.test(out) ? resolve() : reject(new Error(`pkgforge ${args.join(' ')} exited before ${re}:\n${out}`)),
        );
        check();
      }),
  };
}

/** Resolves once `check` returns a value other than null/undefined/false, looking every `everyMs`; fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | null | undefined | false> | T | null | undefined | false,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== null && value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
