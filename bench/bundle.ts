/**
 * Bundles a benchmark's child-process helper (bench/<name>.ts) with the program's esbuild options
 * into test-output/bench/, so the child loads a few files rather than ~800 modules through tsx, and
 * its figures (time, peak memory) are the program's own, not a TypeScript loader's.
 */
import { build } from 'esbuild';
import { join } from 'node:path';
// @ts-expect-error: a plain ES module without types, shared with the program's build.
import { COMMON } from '../scripts/esbuild-options.mjs';

const ROOT = join(import.meta.dirname, '..');

/** Returns the path of the bundled helper, ready for `node PATH …`. */
export async function bundledHelper(name: string): Promise<string> {
  const outdir = join(ROOT, 'test-output', 'bench');
  await build({
    ...COMMON,
    splitting: false,
    absWorkingDir: ROOT,
    entryPoints: { [name]: join('bench', `${name}.ts`) },
    outdir,
    outExtension: { '.js': '.mjs' },
  });
  return join(outdir, `${name}.mjs`);
}
