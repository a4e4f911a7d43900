#!/usr/bin/env node
// The installed entry point runs the bundled program; `npm ci` builds it (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/pkgforge.js', import.meta.url);
if (!existsSync(fileURLToPath(compiled))) {
  process.stderr.write(
    'pkgforge: the program is not built yet; run `npm ci` (or `npm run build`) in the PkgForge directory\n',
  );
  process.exit(1);
}
await import(compiled.href);
