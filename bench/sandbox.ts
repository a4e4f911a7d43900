/**
 * npm run bench:sandbox — what the build sandbox costs. The same SRPM is rebuilt with rpmbuild
 * through the bubblewrap sandbox (user drop when run as root, prlimit, the limits watcher, a fresh
 * workspace) and through `sandbox: none`, alternating, BENCH_RUNS times each (default 20), for a
 * tiny package and for one whose build takes 1 s; and a no-op command (`true`) both ways.
 * Target: the sandbox adds at most 50 ms a build (ratio <= 1.1 for the 1 s build).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setUpSandbox } from '../src/buildd/sandbox-setup.ts';
import type { Sandbox } from '../src/buildd/sandbox.ts';
import { makeWorkspace, removeWorkspace } from '../src/buildd/workspace.ts';
import { loadConfig } from '../src/config/load-config.ts';
import { buildRpm, specFor, srpm } from '../test/helpers/srpm.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const home = mkdtempSync(join(tmpdir(), 'pkgforge-bench-sandbox-'));
const signal = new AbortController().signal;

interface Box {
  sandbox: Sandbox;
  /** Where its workspaces are made. */
  base: string;
}

async function boxFor(kind: 'bwrap' | 'none'): Promise<Box> {
  const config = loadConfig({ files: [], env: { PKGFORGE_HOME: home, HOME: home }, overrides: { sandbox: kind } });
  const setup = await setUpSandbox(config, `bench-${kind}`, 'el9');
  if (!setup.sandbox) throw new Error(setup.problem);
  return { sandbox: setup.sandbox, base: setup.workspaces };
}

/** One rebuild of `file` (in `dir`) in a fresh workspace, in ms. */
async function rebuild({ sandbox: box, base }: Box, dir: string, file: string): Promise<number> {
  const t0 = performance.now();
  const ws = await makeWorkspace(base, 'bench-', box, dir, [file]);
  const top = box.path(ws.build, 'rpmbuild');
  const r = await box.run({
    argv: ['rpmbuild', '--rebuild', '--nodeps', '--quiet', '--define', `_topdir ${top}`, box.path(ws.sources, file)],
    binds: [ws.sources, ws.build],
    home: ws.build,
    timeoutMs: 120_000,
    signal,
  });
  await removeWorkspace(ws, box);
  if (r.code !== 0) throw new Error(`rpmbuild failed in ${box.kind}: ${r.code}`);
  return performance.now() - t0;
}

async function noop({ sandbox: box }: Box): Promise<number> {
  const t0 = performance.now();
  const home = { host: '/', at: '/' };
  const r = await box.run({ argv: ['true'], binds: [], home, timeoutMs: 10_000, signal });
  if (r.code !== 0) throw new Error(`true failed in ${box.kind}`);
  return performance.now() - t0;
}

try {
  const sandboxed = await boxFor('bwrap');
  const bare = await boxFor('none');
  console.log(
    `PkgForge sandbox benchmark (${RUNS} runs each, alternating, after a warm-up); ${sandboxed.sandbox.describe()}`,
  );
  const cases: [string, string][] = [
    ['a tiny noarch package', srpm('benchbox')],
    [
      'a package whose build takes 1 s',
      buildRpm(specFor('benchbox1s').replace('%install', '%build\nsleep 1\n%install')),
    ],
  ];
  for (const [label, path] of cases) {
    const dir = join(path, '..');
    const file = path.slice(dir.length + 1);
    await rebuild(sandboxed, dir, file);
    await rebuild(bare, dir, file);
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      a.push(await rebuild(sandboxed, dir, file));
      b.push(await rebuild(bare, dir, file));
    }
    const added = median(a) - median(b);
    console.log(
      `${label}: sandboxed median ${median(a).toFixed(0)} ms, unsandboxed median ${median(b).toFixed(0)} ms; added ${added.toFixed(0)} ms, ratio ${(median(a) / median(b)).toFixed(3)} (target: added <= 50 ms${label.includes('1 s') ? ', ratio <= 1.1' : ''})`,
    );
  }
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const x = await noop(sandboxed);
    const y = await noop(bare);
    if (i === 0) continue;
    a.push(x);
    b.push(y);
  }
  console.log(
    `a no-op command (true): sandboxed median ${median(a).toFixed(1)} ms, bare median ${median(b).toFixed(1)} ms; added ${(median(a) - median(b)).toFixed(1)} ms, ratio ${(median(a) / median(b)).toFixed(2)}`,
  );
} finally {
  rmSync(home, { recursive: true, force: true });
}
