import type { FastifyBaseLogger } from 'fastify';
import type { Registry } from '../../registry/registry.ts';

/** One claim's wait for a task of its platform: armed before the claim looks, so no announcement is missed. */
export interface TaskWait {
  /** Resolves when a task of the platform was announced since the wait was armed, `ms` passed, or `signal` aborted. */
  until(ms: number, signal: AbortSignal): Promise<void>;
  cancel(): void;
}

/**
 * The waits of long-polling claims, woken by one listener for the whole server (LISTEN/NOTIFY on
 * PostgreSQL, the wake file on SQLite), started with the first wait. While the listener has lost its
 * connection, waits last a second at most, so claims poll until it is back.
 */
export function taskWaiters(registry: Registry, log: FastifyBaseLogger) {
  const waits = new Set<{ platformId: number; poked: boolean; wake: (() => void) | null }>();
  let listening: Promise<() => Promise<void>> | null = null;
  let connected = true;
  const pokeAll = (platforms: number[] | 'any') => {
    for (const w of waits)
      if (platforms === 'any' || platforms.includes(w.platformId)) {
        w.poked = true;
        w.wake?.();
      }
  };
  const listen = () =>
    (listening ??= registry
      .listenForTasks(pokeAll, {
        onLost: (err) => {
          connected = false;
          log.warn(
            { err: err.message },
            'task notifications lost; remote claims poll every second until they are back',
          );
          pokeAll('any');
        },
        onRestored: () => {
          connected = true;
          pokeAll('any');
        },
      })
      .catch((err: Error) => {
        listening = null;
        connected = false;
        log.warn({ err: err.message }, 'cannot listen for task notifications; remote claims poll every second');
        return async () => {};
      }));
  return {
    wait(platformId: number): TaskWait {
      const w = { platformId, poked: false, wake: null as (() => void) | null };
      waits.add(w);
      const ready = listen();
      return {
        until: async (ms, signal) => {
          await ready;
          if (w.poked || signal.aborted) return;
          await new Promise<void>((resolve) => {
            const done = () => (clearTimeout(timer), signal.removeEventListener('abort', done), resolve());
            const timer = setTimeout(done, connected ? ms : Math.min(ms, 1000));
            signal.addEventListener('abort', done, { once: true });
            w.wake = done;
          });
          w.wake = null;
        },
        cancel: () => void waits.delete(w),
      };
    },
    close: async () => {
      const stop = await listening;
      listening = null;
      await stop?.();
    },
  };
}
