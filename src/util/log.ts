import pino, { type Logger } from 'pino';

export type Log = Pick<Logger, 'info' | 'warn' | 'error' | 'debug' | 'child'>;

/** A daemon's logger: JSON lines (pino) on standard error, or into `file` when given. */
export function makeLog(options: { debug?: boolean; file?: string; name?: string } = {}): Logger {
  // Synchronous writes: daemon logs are small, and the last lines before an exit must not be lost.
  const destination = options.file
    ? pino.destination({ dest: options.file, mkdir: true, sync: true })
    : pino.destination({ dest: 2, sync: true });
  return pino({ level: options.debug ? 'debug' : 'info', base: { name: options.name ?? 'pkgforge' } }, destination);
}

/** A logger that drops everything, for library calls whose caller reports the results itself. */
export const silentLog: Log = pino({ level: 'silent' });
