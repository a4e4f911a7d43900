import { closeSync, openSync, watch, writeFile, type FSWatcher } from 'node:fs';
import type { ListenEvents } from './dialect/postgres.ts';

/**
 * SQLite's stand-in for LISTEN/NOTIFY: a file beside the database that is written whenever tasks
 * become claimable, so idle build daemons in other processes, watching it (inotify, through
 * fs.watch), wake at once instead of polling. What the file holds does not matter: the write is the
 * event, and a woken daemon looks for work of its own platform. A write that fails, or a watch that
 * breaks, leaves the daemons' poll to find the tasks.
 */
export class WakeFile {
  #writing = false;
  #again = false;

  constructor(readonly path: string) {}

  /**
   * Wakes the watchers. Never throws and never waits: the caller's commit is already done. Touches
   * while a write is in progress are served by one more write once it ends (many commits in a
   * burst, one or two wake-ups).
   */
  touch(): void {
    if (this.#writing) {
      this.#again = true;
      return;
    }
    this.#writing = true;
    writeFile(this.path, `${Date.now()}\n`, { mode: 0o664 }, () => {
      this.#writing = false;
      if (this.#again) {
        this.#again = false;
        this.touch();
      }
    });
  }

  /** Calls `onWake` at each write until the returned function is called; a watch that fails says so through `events`. */
  watch(onWake: () => void, events: ListenEvents): () => void {
    let watcher: FSWatcher | null = null;
    try {
      // The file must exist to be watched; appending nothing creates it and changes nothing else.
      closeSync(openSync(this.path, 'a', 0o664));
      watcher = watch(this.path, { persistent: false }, () => onWake());
      watcher.on('error', (err) => {
        watcher?.close();
        watcher = null;
        events.onLost(err);
      });
    } catch (err) {
      events.onLost(err as Error);
    }
    return () => watcher?.close();
  }
}
