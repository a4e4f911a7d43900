// Builds the program that bin/pkgforge.js runs: src/cli/main.ts bundled by esbuild into dist/, one
// file per command group (split at the CLI's lazy imports). Loading ~800 small modules of kysely,
// typebox and yaml cost every `pkgforge` command half a second; bundled, they are one file each.
// Type checking is tsc's job (`npm run typecheck`); esbuild only strips the types.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { COMMON } from './esbuild-options.mjs';

const root = new URL('..', import.meta.url).pathname;
rmSync(`${root}dist`, { recursive: true, force: true });
await build({
  ...COMMON,
  absWorkingDir: root,
  entryPoints: { pkgforge: 'src/cli/main.ts' },
  outdir: 'dist',
  sourcemap: 'linked',
});
