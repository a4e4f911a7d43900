// Bundles every test file (and the helpers tests start as processes) into test-output/bundle/, for
// scripts/test.sh. Run through tsx, each test process resolved and loaded ~800 modules through its
// loader hooks: 2 s of CPU for a file of plain-value tests, a third of the whole run on 2 cores.
// A test still runs by itself from its sources (`node --import tsx --test test/x.test.ts`).
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMMON } from './esbuild-options.mjs';

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'test-output', 'bundle');

/** Test files and the helpers that run as child processes, relative to the root. */
function entries(dir) {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return entries(path);
    return /\.test\.ts$|-child\.ts$/.test(e.name) ? [path] : [];
  });
}

/**
 * Our own modules keep the locations they were written at: `import.meta.dirname` and `url` are
 * their source's (tests find fixtures, helpers and src/ by them; the web pages find their
 * templates), wherever the bundle puts the code.
 */
const sourceLocations = {
  name: 'source-locations',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, (args) => {
      if (args.path.includes('/node_modules/')) return undefined;
      const text = readFileSync(args.path, 'utf8')
        .replaceAll('import.meta.dirname', JSON.stringify(dirname(args.path)))
        .replaceAll('import.meta.filename', JSON.stringify(args.path))
        .replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href));
      return { contents: text, loader: 'ts' };
    });
  },
};

rmSync(out, { recursive: true, force: true });
const files = entries('test');
await build({
  ...COMMON,
  absWorkingDir: root,
  entryPoints: files,
  outbase: root,
  outdir: out,
  outExtension: { '.js': '.mjs' },
  plugins: [sourceLocations],
});
// The runner's file list, one per line.
process.stdout.write(
  files
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => relative(root, join(out, f.replace(/\.ts$/, '.mjs'))))
    .join('\n') + '\n',
);
