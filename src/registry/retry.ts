import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Errors after which the same registry operation may succeed if tried again: the server is down or
 * restarting, the connection broke, or a concurrent transaction got in the way. Anything else
 * (a constraint, a syntax error) is permanent and retrying would only hide it.
 */
const TRANSIENT_CODES = new Set([
  // Node's socket errors
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH',
  // PostgreSQL SQLSTATE: connection exceptions
  '08000', '08001', '08003', '08004', '08006',
  // serialization failure, deadlock: the transaction can simply run again
  '40001', '40P01',
  // too many connections; admin shutdown, crash shutdown, cannot connect now (starting up)
  '53300', '57P01', '57P02', '57P03',
  // SQLite: another process holds the lock longer than the busy timeout
  'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED',
]);

export function isTransientRegistryError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
  if (err instanceof AggregateError) return err.errors.some(isTransientRegistryError);
  // node-postgres reports a connection lost mid-query without a code.
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(err.message);
}

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts?: number;
  /** First back-off in milliseconds; doubles each time up to maxDelayMs. */
  delayMs?: number;
  maxDelayMs?: number;
  /** Told of each transient failure before the wait. */
  onRetry?: (err: Error, attempt: number, delayMs: number) => void;
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
      if (attempt >= attempts || !isTransientRegistryError(err) || options.signal?.aborted) throw err;
      options.onRetry?.(err as Error, attempt, delay);
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : {}).catch(() => {});
      delay = Math.min(delay * 2, options.maxDelayMs ?? 5000);
    }
  }
}
