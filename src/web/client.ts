/** The HTTP API's client, for `pkgforge submit --server` and `pkgforge logs --server`: the same API the web server serves. */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { ErrorCode, PkgForgeError } from '../util/errors.ts';
import { apiUrl, reach } from '../util/reach.ts';

/** Talking to a PkgForge server over its HTTP API (no shared file system needed). */

async function failure(res: Response): Promise<PkgForgeError> {
  const body = (await res.json().catch(() => null)) as { message?: string } | null;
  return new PkgForgeError(
    res.status === 401 ? ErrorCode.auth : res.status === 404 ? ErrorCode.notFound : ErrorCode.usage,
    `The server refused: ${body?.message ?? `${res.status} ${res.statusText}`}`,
  );
}

export interface RemoteSubmit {
  server: string;
  token: string | undefined;
  files: string[];
  fields: {
    bucket?: string | undefined;
    platforms: string[];
    archs: string[];
    report: string[];
    id?: string | undefined;
  };
  /** Told of the bytes of the packages sent so far, out of the total. */
  onProgress?: (sent: number, total: number) => void;
}

/**
 * A multipart/form-data body generated as it is sent: fields first, then each file streamed from
 * disk in chunks (never read whole), counting the bytes for a progress bar.
 */
async function* multipartBody(
  boundary: string,
  fields: [string, string][],
  files: string[],
  onChunk: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  const quote = (s: string) => s.replace(/["\r\n\\]/g, '_');
  for (const [name, value] of fields) {
    yield enc.encode(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n\r\n${value}\r\n`);
  }
  for (const file of files) {
    yield enc.encode(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quote(basename(file))}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) {
      onChunk((chunk as Buffer).length);
      yield chunk as Buffer;
    }
    yield enc.encode('\r\n');
  }
  yield enc.encode(`--${boundary}--\r\n`);
}

/** Uploads a job, streaming the packages from disk. */
export async function submitRemote(req: RemoteSubmit): Promise<{ id: string; url: string; packages: string[] }> {
  if (!req.token)
    throw new PkgForgeError(
      ErrorCode.auth,
      'Submitting to a server needs an API token: --token, PKGFORGE_TOKEN or `token` in submit.yml (an admin makes one with `pkgforge token create`)',
    );
  let total = 0;
  for (const f of req.files) {
    const st = await stat(f).catch(() => null);
    if (!st?.isFile())
      throw new PkgForgeError(ErrorCode.sourcePackage, `The file '${f}' does not exist or is not a regular file`);
    total += st.size;
  }
  const fields: [string, string][] = [
    ...(req.fields.bucket ? [['bucket', req.fields.bucket] as [string, string]] : []),
    ...(req.fields.id ? [['id', req.fields.id] as [string, string]] : []),
    ...req.fields.platforms.map((p) => ['platforms', p] as [string, string]),
    ...req.fields.archs.map((a) => ['archs', a] as [string, string]),
    ...req.fields.report.map((r) => ['report', r] as [string, string]),
  ];
  const boundary = `pkgforge-${randomBytes(12).toString('hex')}`;
  let sent = 0;
  const body = Readable.from(multipartBody(boundary, fields, req.files, (n) => req.onProgress?.((sent += n), total)));
  const res = await reach(apiUrl(req.server, '/api/v1/jobs'), {
    method: 'POST',
    body: Readable.toWeb(body) as ReadableStream,
    headers: { authorization: `Bearer ${req.token}`, 'content-type': `multipart/form-data; boundary=${boundary}` },
    duplex: 'half',
  } as RequestInit);
  if (res.status !== 201) throw await failure(res);
  const answer = (await res.json()) as { id: string; url: string; packages: string[] };
  return { ...answer, url: apiUrl(req.server, answer.url) };
}

/** Follows a task's build log from the server's event stream, writing the text to `out`. */
export async function followRemoteLog(
  server: string,
  token: string | undefined,
  job: string,
  platform: string,
  arch: string,
  out: NodeJS.WritableStream,
): Promise<void> {
  const url = apiUrl(
    server,
    `/api/v1/jobs/${encodeURIComponent(job)}/tasks/${encodeURIComponent(platform)}/${encodeURIComponent(arch)}/log`,
  );
  let lastId = 0;
  for (let reconnects = 0; reconnects < 20; reconnects++) {
    const res = await reach(url, {
      headers: {
        ...(token && { authorization: `Bearer ${token}` }),
        ...(lastId > 0 && { 'last-event-id': String(lastId) }),
      },
    });
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
          if (!lines.some((l) => l.startsWith('event: ')))
            out.write(
              lines
                .filter((l) => l.startsWith('data: '))
                .map((l) => l.slice(6))
                .join('\n'),
            );
        }
      }
    } catch {
      // The connection broke: reconnect and resume from the last offset.
    }
    if (ended) return;
  }
  throw new PkgForgeError(ErrorCode.transfer, `Lost the log stream of ${job} ${platform}/${arch} too often`);
}

/** The platforms a server's farm has (`GET /api/v1/platforms`). */
export async function serverPlatforms(
  server: string,
  token: string | undefined,
): Promise<{ name: string; arch: string; active: boolean; auto: boolean; family: 'rpm' | 'deb' }[]> {
  const res = await reach(apiUrl(server, '/api/v1/platforms'), {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as Awaited<ReturnType<typeof serverPlatforms>>;
}
