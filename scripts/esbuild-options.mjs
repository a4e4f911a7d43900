// What the program's bundle (build.mjs) and the tests' bundles (build-tests.mjs) share.

/**
 * Packages left to Node's own loading: native code (better-sqlite3, pg's optional pg-native), and
 * those that find files beside their own code at run time (the web server's plugins serve their
 * assets from their package directories) or start workers (pino's transports, playwright).
 */
export const EXTERNAL = [
  'better-sqlite3',
  'pg-native',
  'fastify',
  '@fastify/*',
  'pino',
  'nodemailer',
  'playwright-core',
  'smtp-server',
  'autocannon',
];

/** CommonJS packages bundled into ES modules call require() for Node's own modules. */
export const BANNER = {
  js: "import { createRequire as __pkgforgeRequire } from 'node:module';\nconst require = __pkgforgeRequire(import.meta.url);",
};

/** The options every bundle of ours is built with: ES modules for Node 20, split at dynamic imports. */
export const COMMON = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  banner: BANNER,
  chunkNames: 'chunks/[name]-[hash]',
  logLevel: 'warning',
};
