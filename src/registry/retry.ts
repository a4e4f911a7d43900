import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The one classification of registry errors every process uses: those after which the same
 * operation may succeed if tried again (the server is down, restarting or full, the connection
 * broke, a concurrent transaction got in the way), each with the words a log says it in. Anything
 * else (a constraint, a syntax error, a missing table) is permanent: retrying would only hide it.
 */
const TRANSIENT: readonly { kind: string; codes: readonly string[] }[] = [
  // Node's socket errors, as node-postgres passes them on.
  { kind: 'connection refused', codes: ['ECONNREFUSED'] },
  { kind: 'connection reset', codes: ['ECONNRESET', 'EPIPE', 'ECONNABORTED'] },
  // Not ENOTFOUND: a host name that does not exist is a mistake to fix, not a state to wait out.
  { kind: 'network unreachable', codes: ['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'] },
  // PostgreSQL SQLSTATE class 08: connection exceptions.
  { kind: 'connection failure', codes: ['08000', '08001', '08003', '08004', '08006'] },
  // Admin shutdown (pg_terminate_backend, a fast stop), crash shutdown, starting up, idle timeout.
  { kind: 'server shutting down or starting', codes: ['57P01', '57P02', '57P03', '57P05'] },
  // Class 53: too many connections, disk full, out of memory on the server.
  { kind: 'too many connections', codes: ['53300'] },
  { kind: 'server out of resources', codes: ['53000', '53100', '53200'] },
  // Class 40: the transaction can simply run again.
  { kind: 'serialization failure', codes: ['40001', '40P01'] },
  { kind: 'lock not available', codes: ['55P03'] },
  // SQLite: another process holds the lock longer than the busy timeout.
  {
    kind: 'database busy',
    codes: [
      'SQLITE_BUSY',
      'SQLITE_BUSY_SNAPSHOT',
      'SQLITE_BUSY_RECOVERY',
      'SQLITE_LOCKED',
      'SQLITE_LOCKED_SHAREDCACHE',
    ],
  },
];
const KIND_BY_CODE = new Map(TRANSIENT.flatMap(({ kind, codes }) => codes.map((c) => [c, kind] as const)));

/**
 * Why `err` is a transient registry error, in a few words ("connection refused"), or null when it
 * is permanent.
 */
export function transientRegistryError(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    const kind = KIND_BY_CODE.get(code);
    if (kind) return kind;
    // 55000 is a broad class ("object not in prerequisite state"); only the database refusing new
    // connections (ALLOW_CONNECTIONS false, as during a maintenance) is a passing state.
    if (code === '55000' && /accepting connections/i.test(err.message)) return 'not accepting connections';
  }
  if (err instanceof AggregateError) {
    for (const e of err.errors) {
      const kind = transientRegistryError(e);
      if (kind) return kind;
    }
    return null;
  }
  // Our own errors keep the driver's as their cause (a migration that could not connect).
  if (err.cause !== undefined && err.cause !== err) return transientRegistryError(err.cause);
  // node-postgres reports a connection lost mid-query, or a pool that cannot connect, without a code.
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    err.message,
  )
    ? 'connection lost'
    : null;
}

export function isTransientRegistryError(err: unknown): boolean {
  return transientRegistryError(err) !== null;
}

export interface RetryOptions {
  /** Tries in all, the first included (default 5; Infinity to try until `until` or `signal`). */
  attempts?: number;
  /** Stop retrying once this epoch-millisecond time has passed (the last error is thrown); a function is asked again before each wait. */
  until?: number | (() => number);
  /** First back-off in milliseconds; doubles each time up to maxDelayMs. */
  delayMs?: number;
  maxDelayMs?: number;
  /** Told of each transient failure before the wait, with the error's kind. */
  onRetry?: (err: Error, attempt: number, delayMs: number, kind: string) => void;
  /** Ends the waiting: the last error is thrown (the operation itself is always tried once). */
  signal?: AbortSignal;
}

/** Runs a registry operation, retrying transient failures with exponential back-off. */
export async function withRegistryRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 5;
  let delay = options.delayMs ?? 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const kind = transientRegistryError(err);
      if (!kind || attempt >= attempts || options.signal?.aborted) throw err;
      const until = typeof options.until === 'function' ? options.until() : options.until;
      const wait = until === undefined ? delay : Math.min(delay, until - Date.now());
      if (wait <= 0) throw err;
      options.onRetry?.(err as Error, attempt, wait, kind);
      await sleep(wait, undefined, options.signal ? { signal: options.signal } : {}).catch(() => {});
      delay = Math.min(delay * 2, options.maxDelayMs ?? 5000);
    }
  }
}
