/**
 * The remote-build protocol's words, shared by the farm's HTTP API (web/routes/builder-api.ts), its
 * side of a remote build (buildd/farm-side.ts) and the remote build daemon (buildd/remote-daemon.ts).
 * A remote builder holds a builder token and the farm's URL only: it claims over HTTP, fetches the
 * accepted sources, builds in its own sandbox, streams its log up, uploads its products and reports;
 * the farm checks, signs, publishes and records what it received.
 */
import type { Manifest } from './manifest.ts';
import { fileNameProblem } from './names.ts';

/** One file a builder uploaded: its name, size and SHA-256 (hex), as the builder computed them. */
export interface RemoteFile {
  name: string;
  size: number;
  sha256: string;
}

/** How a remote attempt's build ended, as its builder reports it with `finish`. */
export interface RemoteReport {
  status: 'success' | 'fail';
  reason: string | null;
  /** The build host's name, and when the build started (epoch seconds), for buildinfo.yml. */
  hostname: string;
  starttime: number;
  /** The builder's phases (`init`, `build`), and the packages it built or failed. */
  phases: string[];
  success: string[];
  failures: string[];
  /** Every product, uploaded before the report. */
  products: RemoteFile[];
}

/** One file of a claimed job's accepted sources, with what the builder checks its copy against. */
export interface RemoteSource {
  file: string;
  size: number;
  /** Hex; sha1 only for a package whose manifest carried no SHA-256 (the original's manifests). */
  sha256: string | null;
  sha1: string | null;
}

/** Every file of a job's accepted sources, in build order, with the checksums its manifest holds. */
export function sourcesOf(manifest: Manifest): RemoteSource[] {
  return manifest.packages.flatMap((p) => [
    { file: p.file, size: p.size, sha256: p.sha256sum ?? null, sha1: p.sha256sum ? null : p.sha1sum },
    ...(p.parts ?? []).map((x) => ({ file: x.file, size: x.size, sha256: x.sha256sum, sha1: null })),
  ]);
}

/** What the farm answers a remote builder's finish with: how the task ended, as recorded. */
export interface RemoteFinishAnswer {
  status: 'success' | 'fail' | 'cancelled' | 'refused';
  reason: string | null;
}

/** Where uploads of an attempt wait in its results directory until the farm took them (hidden: never served). */
export const RECEIVED_DIR = '.received';

/** What a build may upload: the products of the builder commands (products.ts takes the same kinds). */
export const UPLOAD_ENDINGS = ['.rpm', '.deb', '.changes', '.buildinfo'] as const;

/** Why `name` cannot be uploaded as a product, or null. */
export function uploadNameProblem(name: string): string | null {
  const problem = fileNameProblem(name);
  if (problem) return problem;
  if (name.startsWith('.')) return 'the file name starts with a dot';
  if (!UPLOAD_ENDINGS.some((e) => name.endsWith(e)))
    return `the file name does not end in ${UPLOAD_ENDINGS.join(', ')}`;
  return null;
}

/**
 * Longest wait a claim may ask for, in seconds: under the default idle_timeout (60 s), and under what
 * proxies in between commonly allow a quiet request.
 */
export const MAX_CLAIM_WAIT_SECONDS = 50;
