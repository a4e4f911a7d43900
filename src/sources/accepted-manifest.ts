import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { MANIFEST_FILE, parseManifest, type Manifest } from '../core/manifest.ts';
import { messageOf } from '../util/errors.ts';

/** Parsed build.yml files kept, by path: parsing is most of the cost of reading one. */
const CACHE_SIZE = 256;
const cache = new Map<string, { key: string; text: string; manifest: Manifest }>();

/**
 * The build.yml of an accepted copy (`accepted/<job>/`), as text and parsed. The farm asks for the
 * same one several times per task (a remote builder's claim, then its report), so the parse is kept
 * while the file is the same one (its inode, size and change time): an accepted copy is written once.
 */
export async function readAcceptedManifest(
  acceptedDir: string,
  jobId: string,
): Promise<{ text: string; manifest: Manifest }> {
  const path = join(acceptedDir, MANIFEST_FILE);
  try {
    const st = await stat(path);
    const key = `${st.ino}:${st.size}:${st.ctimeMs}`;
    const kept = cache.get(path);
    if (kept?.key === key) return kept;
    const text = await readFile(path, 'utf8');
    const entry = { key, text, manifest: parseManifest(text, `accepted/${jobId}/${MANIFEST_FILE}`) };
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(path, entry);
    return entry;
  } catch (err) {
    throw new Error(`The accepted copy of job ${jobId} cannot be read: ${messageOf(err)}`);
  }
}
