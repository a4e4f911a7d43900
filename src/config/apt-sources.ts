import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDeb822 } from '../sources/deb822.ts';

/** One `deb` entry of apt's sources: where, and which suites. */
interface AptSource {
  uri: string;
  suites: string[];
}

/**
 * The mirror this host's apt uses for its release (not its security or updates suites): the URI
 * of the first `deb` entry with a plain codename among its suites, from `sources.list.d/*.sources`
 * (deb822) or the one-line `sources.list` files. Build roots are made from it unless
 * `debian_mirror` names another. Null when apt has no such entry (not a Debian host).
 */
export async function hostAptMirror(etc = '/etc/apt'): Promise<string | null> {
  const sources: AptSource[] = [];
  const dir = join(etc, 'sources.list.d');
  const names = (await readdir(dir).catch(() => [] as string[])).sort();
  for (const name of names.filter((n) => n.endsWith('.sources'))) {
    // apt's deb822 files may hold comment lines, which .dsc files may not.
    const text = (await readFile(join(dir, name), 'utf8').catch(() => ''))
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    try {
      for (const p of parseDeb822(text).paragraphs) {
        if (!(p.get('Types') ?? '').split(/\s+/).includes('deb')) continue;
        if (/^(no|false)$/i.test(p.get('Enabled') ?? 'yes')) continue;
        const suites = (p.get('Suites') ?? '').split(/\s+/).filter(Boolean);
        for (const uri of (p.get('URIs') ?? '').split(/\s+/).filter(Boolean)) sources.push({ uri, suites });
      }
    } catch {
      // A file apt would refuse too: not ours to judge.
    }
  }
  const lists = [join(etc, 'sources.list'), ...names.filter((n) => n.endsWith('.list')).map((n) => join(dir, n))];
  for (const file of lists) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      // deb [options] URI suite components…
      const m = line.replace(/#.*/, '').match(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/);
      if (m) sources.push({ uri: m[1]!, suites: [m[2]!] });
    }
  }
  const main = sources.find((s) => s.suites.some((suite) => /^[a-z]+$/.test(suite)) && /^https?:\/\//.test(s.uri));
  return main?.uri ?? null;
}
