import type { HttpLimits } from '../config/load-config.ts';
import type { RemoteFinishAnswer, RemoteReport } from '../core/remote-build.ts';
import type { Claim } from '../registry/attempts.ts';
import type { Registry } from '../registry/registry.ts';

/**
 * The farm's side of remote builds (buildd/farm-side.ts, handed in by the command that starts the
 * server): what needs the farm's checks, signing key and repositories.
 */
export interface RemoteBuilds {
  leaseExpiryMs: number;
  leaseRenewalMs: number;
  /** The largest product a builder of the platform may upload, in bytes (its `limits`' product). */
  productMaxBytes: (platform: string) => number;
  /** The most an attempt's uploads may come to together, in bytes (its `limits`' workdir). */
  uploadMaxBytes: (platform: string) => number;
  /**
   * A claim of a task whose earlier attempt's build the registry accepted: the farm publishes that
   * build itself (it holds its products) and records it. True when it did, so the claim is settled.
   */
  settle(claim: Claim): Promise<boolean>;
  /** A remote attempt's report: its uploaded products checked, signed, published and recorded (or its failure). */
  complete(claim: Claim, report: RemoteReport): Promise<RemoteFinishAnswer | 'unrecorded'>;
}

/** What the web application needs; every route plugin gets it (its own module, so app and routes do not import each other). */
export interface WebContext {
  registry: Registry;
  /** The accepted copies: remote builders fetch the sources of the jobs they hold from here. */
  accepted: string;
  results: string;
  /** Published repositories (`repos`): the web shows their lines and serves their keys. */
  repos: string;
  /** Where users reach the farm (`public_url`), for the repositories' addresses; else the address asked. */
  publicUrl?: string | null;
  /** Where uploaded jobs are written (the incoming directory). */
  incoming: string;
  /** The largest source package an upload may carry, in bytes. */
  uploadMaxBytes: number;
  /** Reading needs a token too (by default only writing does). */
  readRequiresToken: boolean;
  /** A builder whose last heartbeat is older than this is not healthy (the lease expiry). */
  healthyWithinMs: number;
  /** The server's timeouts, minimum upload rate and connections per client; the defaults for those not given. */
  limits?: Partial<HttpLimits>;
  /** Remote builders (`pkgforge buildd --server`): absent, the builder API answers 503, with `noBuilds` as the reason. */
  builds?: RemoteBuilds;
  noBuilds?: string;
}
