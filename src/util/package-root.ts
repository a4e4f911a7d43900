import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

/**
 * A path inside PkgForge's own directory (where package.json is), for files that ship beside the
 * code (the web pages' templates). Found by walking up from this module, so it is the same from
 * the sources, and from the bundled program in dist/, wherever a bundler put this code.
 */
export function packagePath(...parts: string[]): string {
  if (root === null) {
    let dir = dirname(fileURLToPath(import.meta.url));
    while (!existsSync(join(dir, 'package.json'))) {
      const up = dirname(dir);
      if (up === dir) throw new Error(`PkgForge's package.json is not above ${fileURLToPath(import.meta.url)}`);
      dir = up;
    }
    root = dir;
  }
  return join(root, ...parts);
}
