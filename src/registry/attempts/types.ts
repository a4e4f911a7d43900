/** A task in a builder's hands. */
export interface Claim {
  taskId: number;
  attempt: number;
  jobRowId: number;
  jobId: string;
  bucket: string;
  platform: string;
  arch: string;
  builderId: number;
  builderName: string;
  /** An earlier attempt whose build the registry accepted: this claim publishes it instead of building. */
  acceptedAttempt: number | null;
}

export interface BuilderIdentity {
  id: number;
  name: string;
  platformId: number;
}

/** What a heartbeat learns: carry on, stop because the task was cancelled, or stop because the lease is gone. */
export type HeartbeatAnswer = 'ok' | 'cancelled' | 'lost';
