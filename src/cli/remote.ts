import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';

/** Talking to a PkgForge server over its HTTP API (no shared file system needed). */

function apiUrl(server: string, path: string): string {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new PkgForgeError(ErrorCode.usage, `--server takes a URL such as http://pkgforge.example.org:8080, not '${server}'`);
  }
  return new URL(path.replace(/^\//, ''), base.href.endsWith('/') ? base.href : `${base.href}/`).href;
}

async function failure(res: Response): Promise<PkgForgeError> {
  const body = (await res.json().catch(() => null)) as { message?: string } | null;
  return new PkgForgeError(res.status === 401 ? ErrorCode.auth : res.status === 404 ? ErrorCode.notFound : ErrorCode.usage, `The server refused: ${body?.message ?? `${res.status} ${res.statusText}`}`);
}

export interface RemoteSubmit {
  server: string;
  token: string | undefined;
  files: string[];
  fields: { bucket?: string | undefined; platforms: string[]; archs: string[]; report: string[]; id?: string | undefined };
}

/** Uploads a job; the files are streamed from disk (Blobs backed by the files), never read whole. */
export async function submitRemote(req: RemoteSubmit): Promise<{ id: string; url: string; packages: string[] }> {
  if (!req.token) throw new PkgForgeError(ErrorCode.auth, 'Submitting to a server needs an API token: --token, PKGFORGE_TOKEN or `token` in submit.yml (an admin makes one with `pkgforge token create`)');
  const form = new FormData();
  if (req.fields.bucket) form.append('bucket', req.fields.bucket);
  if (req.fields.id) form.append('id', req.fields.id);
  for (const p of req.fields.platforms) form.append('platforms', p);
  for (const a of req.fields.archs) form.append('archs', a);
  for (const r of req.fields.report) form.append('report', r);
  for (const f of req.files) {
    const blob = await openAsBlob(f).catch(() => {
      throw new PkgForgeError(ErrorCode.sourcePackage, `The file '${f}' does not exist or cannot be read`);
    });
    form.append('file', blob, basename(f));
  }
  const res = await fetch(apiUrl(req.server, '/api/v1/jobs'), { method: 'POST', body: form, headers: { authorization: `Bearer ${req.token}` } });
  if (res.status !== 201) throw await failure(res);
  const body = (await res.json()) as { id: string; url: string; packages: string[] };
  return { ...body, url: apiUrl(req.server, body.url) };
}

/** Follows a task's build log from the server's event stream, writing the text to `out`. */
export async function followRemoteLog(server: string, token: string | undefined, job: string, platform: string, arch: string, out: NodeJS.WritableStream): Promise<void> {
  const url = apiUrl(server, `/api/v1/jobs/${encodeURIComponent(job)}/tasks/${encodeURIComponent(platform)}/${encodeURIComponent(arch)}/log`);
  let lastId = 0;
  for (let reconnects = 0; reconnects < 20; reconnects++) {
    const res = await fetch(url, { headers: { ...(token && { authorization: `Bearer ${token}` }), ...(lastId > 0 && { 'last-event-id': String(lastId) }) } });
    if (!res.ok) throw await failure(res);
    const decoder = new TextDecoder();
    let pending = '';
    let ended = false;
    try {
      for await (const chunk of res.body!) {
        pending += decoder.decode(chunk as Uint8Array, { stream: true });
        let cut;
        while ((cut = pending.indexOf('\n\n')) >= 0) {
          const event = pending.slice(0, cut);
          pending = pending.slice(cut + 2);
          const lines = event.split('\n');
          if (lines.some((l) => l === 'event: end')) ended = true;
          const id = lines.find((l) => l.startsWith('id: '));
          if (id) lastId = Number(id.slice(4));
          if (!lines.some((l) => l.startsWith('event: '))) out.write(lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n'));
        }
      }
    } catch {
      // The connection broke: reconnect and resume from the last offset.
    }
    if (ended) return;
  }
  throw new PkgForgeError(ErrorCode.transfer, `Lost the log stream of ${job} ${platform}/${arch} too often`);
}
