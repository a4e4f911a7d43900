import type { Log } from '../util/log.ts';

/**
 * Stop signals for a daemon: the first SIGTERM/SIGINT lets the work in hand finish (or, with a
 * stop grace, aborts it after that many seconds); a second one aborts it at once.
 */
export function stopSignals(log: Log, graceSeconds: number): { stop: AbortController; abort: AbortController } {
  const stop = new AbortController();
  const abort = new AbortController();
  const handler = (signal: string) => {
    if (stop.signal.aborted) {
      log.warn(`${signal} again: aborting the build in hand`);
      abort.abort(new Error('the build daemon was told to stop now'));
      return;
    }
    log.info(`Handling shutdown request (${signal}), finishing the work in hand`);
    stop.abort();
    if (graceSeconds > 0)
      setTimeout(
        () => abort.abort(new Error(`the build did not finish within the stop grace of ${graceSeconds} s`)),
        graceSeconds * 1000,
      ).unref();
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  return { stop, abort };
}
