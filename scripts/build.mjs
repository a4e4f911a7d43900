// Builds the program that bin/pkgforge.js runs: src/cli/main.ts bundled by esbuild into dist/, one
// file per command group (split at the CLI's lazy imports). Loading ~800 small modules of kysely,
// typebox and yaml cost every `pkgforge` command half a second; bundled, they are one file each.
// Type checking is tsc's job (`npm run typecheck`); esbuild only strips the types.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { BANNER, EXTERNAL } from './esbuild-options.mjs';

const root = new URL('..', import.meta.url).pathname;
rmSync(`${root}dist`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { pkgforge: 'src/cli/main.ts' },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  sourcemap: 'linked',
  banner: BANNER,
  logLevel: 'warning',
});
