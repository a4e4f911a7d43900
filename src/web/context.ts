import type { HttpLimits } from '../config/load-config.ts';
import type { Registry } from '../registry/registry.ts';

/** What the web application needs; every route plugin gets it (its own module, so app and routes do not import each other). */
export interface WebContext {
  registry: Registry;
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
}
