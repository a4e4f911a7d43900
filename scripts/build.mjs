// Builds the program that bin/pkgforge.js runs: src/cli/main.ts bundled by esbuild into dist/, one
// file per command group (split at the CLI's lazy imports). Loading ~800 small modules of kysely,
// typebox and yaml cost every `pkgforge` command half a second; bundled, they are one file each.
// Type checking is tsc's job (`npm run typecheck`); esbuild only strips the types.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

/**
 * Packages left to Node's own loading: native code (better-sqlite3, pg's optional pg-native), and
 * those that find files beside their own code at run time (the web server's plugins serve their
 * assets from their package directories) or start workers (pino's transports).
 */
const EXTERNAL = ['better-sqlite3', 'pg-native', 'fastify', '@fastify/*', 'pino', 'nodemailer'];

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
  // CommonJS packages bundled into ES modules call require() for Node's own modules.
  banner: {
    js: "import { createRequire as __pkgforgeRequire } from 'node:module';\nconst require = __pkgforgeRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
