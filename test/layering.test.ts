import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, it } from 'node:test';

/**
 * The design's import rule, checked on every source file: imports go one way,
 * `cli → incoming | buildd | web → config → registry | sources → core → util`; only the registry
 * talks to databases; `core` touches neither disk, network nor processes.
 */
const SRC = join(import.meta.dirname, '..', 'src');
const RANK: Record<string, number> = {
  util: 0,
  core: 1,
  registry: 2,
  sources: 2,
  config: 3,
  incoming: 4,
  buildd: 4,
  web: 4,
  cli: 5,
};
const DATABASE_DRIVERS = ['kysely', 'pg', 'better-sqlite3'];
const IO_MODULES = [
  'node:fs',
  'node:fs/promises',
  'node:net',
  'node:http',
  'node:https',
  'node:child_process',
  'node:dgram',
  'node:dns',
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every module a file imports, statically or with import(). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1] ?? m[2]!);
}

const layerOf = (file: string) => relative(SRC, file).split('/')[0]!;
const files = sourceFiles(SRC);

describe('the layering of src/', () => {
  it('knows every top-level directory', () => {
    assert.deepEqual(
      [...new Set(files.map(layerOf))].filter((l) => !(l in RANK)),
      [],
    );
  });

  it('imports go one way: no module imports from its own level or above in another layer', () => {
    const wrong: string[] = [];
    for (const file of files) {
      const layer = layerOf(file);
      for (const spec of importsOf(file).filter((s) => s.startsWith('.'))) {
        const target = layerOf(normalize(join(dirname(file), spec)));
        if (target !== layer && RANK[target]! >= RANK[layer]!) wrong.push(`${relative(SRC, file)} → ${spec}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it('only registry/ uses the database libraries', () => {
    const wrong = files
      .filter((f) => layerOf(f) !== 'registry')
      .flatMap((f) =>
        importsOf(f)
          .filter((s) => DATABASE_DRIVERS.includes(s))
          .map((s) => `${relative(SRC, f)} → ${s}`),
      );
    assert.deepEqual(wrong, []);
  });

  it('core/ is pure: no file system, network or processes', () => {
    const wrong = files
      .filter((f) => layerOf(f) === 'core')
      .flatMap((f) =>
        importsOf(f)
          .filter((s) => IO_MODULES.includes(s))
          .map((s) => `${relative(SRC, f)} → ${s}`),
      );
    assert.deepEqual(wrong, []);
  });
});
