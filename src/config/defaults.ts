import type { ConfigFile } from './schema.ts';

type Key<K extends keyof ConfigFile> = NonNullable<ConfigFile[K]>;

/** Every default in one place, each checked against the type its configuration key takes. */
interface Defaults {
  waitForJob: Key<'wait_for_job'>;
  poll: Key<'poll'>;
  tmpdirMode: number;
  http: {
    headersTimeout: number;
    requestTimeout: number;
    idleTimeout: number;
    keepAliveTimeout: number;
    uploadMinRate: number;
    uploadRateWindow: number;
    maxConnectionsPerClient: number;
  };
  builder: Key<'builder'>;
  publishers: Key<'publishers'>;
  timeout: Key<'timeout'>;
  errorPolicy: Key<'error_policy'>;
  leaseRenewal: Key<'lease_renewal'>;
  leaseExpiry: Key<'lease_expiry'>;
  stopGrace: Key<'stop_grace'>;
  uploadMaxBytes: Key<'upload_max_bytes'>;
  readRequiresToken: Key<'read_requires_token'>;
  sandbox: Key<'sandbox'>;
}

export const DEFAULTS = Object.freeze({
  /** 5 minutes, as the original. */
  waitForJob: 300,
  /** The original polled every 60 s; file-system events make a short poll unnecessary. */
  poll: 60,
  /** tmpdir holds build workspaces: traversable by a build user, listable by no one else. */
  tmpdirMode: 0o711,
  /**
   * The web server's limits (seconds, bytes per second, connections). A 2 GiB upload takes 4 hours
   * at 146 KiB/s (1.2 Mbit/s): the total is a backstop, the minimum rate is what stops a trickle.
   */
  http: {
    headersTimeout: 30,
    requestTimeout: 4 * 3600,
    idleTimeout: 60,
    keepAliveTimeout: 5,
    uploadMinRate: 10 * 1024,
    uploadRateWindow: 30,
    maxConnectionsPerClient: 64,
  },
  /** One package's build, in seconds. */
  timeout: 600,
  builder: 'rpmbuild',
  publishers: 'createrepo',
  errorPolicy: 'retry',
  /** Seconds between a build's heartbeats, and without one before its task is requeued. */
  leaseRenewal: 30,
  leaseExpiry: 120,
  /** 0: a stopping daemon waits for the build in hand however long it takes. */
  stopGrace: 0,
  uploadMaxBytes: 2 * 1024 ** 3,
  readRequiresToken: false,
  /** Every build in a bubblewrap sandbox; `none` must be chosen, and is warned about. */
  sandbox: 'bwrap',
} as const satisfies Defaults);
