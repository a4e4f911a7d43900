/**
 * Reaching a PkgForge server over HTTP (submit --server, logs --server, a remote build daemon): its
 * API's addresses, and a server that cannot be reached said as such.
 */
import { ErrorCode, PkgForgeError } from './errors.ts';

/** What a network error code means for someone trying to reach the farm. */
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the farm running there, on that port?)',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved (no DNS answer)',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'no route to the host',
  ENETUNREACH: 'the network is unreachable',
  ECONNRESET: 'the connection was reset',
  UND_ERR_SOCKET: 'the server closed the connection',
};

/**
 * fetch, with a server that cannot be reached said as such: its address and the cause ("connection
 * refused"), not undici's "fetch failed".
 */
export async function reach(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    if (!(err instanceof TypeError) || !cause) throw err;
    const why = (cause.code && UNREACHABLE[cause.code]) ?? cause.message ?? cause.code ?? 'unknown network error';
    throw new PkgForgeError(
      ErrorCode.unavailable,
      `Cannot reach the PkgForge server at ${new URL(url).origin}: ${why}`,
      {
        cause: err,
      },
    );
  }
}

/** The address of `path` on the server `server` (a URL, perhaps with a path of its own). */
export function apiUrl(server: string, path: string): string {
  let base: URL;
  try {
    base = new URL(server);
  } catch {
    throw new PkgForgeError(
      ErrorCode.usage,
      `--server takes a URL such as http://pkgforge.example.org:8080, not '${server}'`,
    );
  }
  return new URL(path.replace(/^\//, ''), base.href.endsWith('/') ? base.href : `${base.href}/`).href;
}
