import type { Kysely } from 'kysely';
import { writeTransaction, type Registry } from './registry.ts';
import { isTransientRegistryError } from './retry.ts';
import type { Database } from './schema.ts';

/** One write, run inside whichever transaction its batch gets. */
export type BatchedWrite<T> = (trx: Kysely<Database>) => Promise<T>;

interface Queued {
  write: BatchedWrite<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: writes asked for while a transaction is running, or within a moment of each
 * other, wait, and one transaction runs all of them, one after the other, and commits once. Each
 * caller's promise settles only after the transaction holding its write has committed (or failed),
 * so a caller's order of "write, then act on the file system" holds exactly as with a transaction
 * of its own; only the commits (an fsync on PostgreSQL, a lock and the WAL's write on SQLite,
 * which is most of a small write's cost) are shared.
 *
 * A batch commits as soon as as many writes wait as `writers()` says may come (every caller is
 * waiting: nobody else will join), when it is full, or `lingerMs` after its first write.
 *
 * A batch that fails for a reason that is not transient is run again one write per transaction,
 * so the write at fault gets its own error and the others are unaffected. A transient failure
 * (the registry went away) rejects every write of the batch, each of which its caller may retry.
 */
export class WriteBatch {
  readonly #registry: Registry;
  readonly #maxWrites: number;
  readonly #lingerMs: number;
  readonly #writers: () => number;
  #queue: Queued[] = [];
  #committing = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(registry: Registry, options: { maxWrites?: number; lingerMs?: number; writers?: () => number } = {}) {
    this.#registry = registry;
    this.#maxWrites = options.maxWrites ?? 64;
    this.#lingerMs = options.lingerMs ?? 0;
    this.#writers = options.writers ?? (() => 1);
  }

  run<T>(write: BatchedWrite<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ write, resolve: resolve as (value: unknown) => void, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#committing || this.#queue.length === 0) return;
    if (this.#queue.length >= Math.min(this.#maxWrites, Math.max(1, this.#writers()))) {
      void this.#commitNext();
      return;
    }
    this.#timer ??= setTimeout(() => void this.#commitNext(), this.#lingerMs);
  }

  async #commitNext(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#committing = true;
    try {
      await this.#commit(this.#queue.splice(0, this.#maxWrites));
    } finally {
      this.#committing = false;
      this.#kick();
    }
  }

  async #commit(batch: Queued[]): Promise<void> {
    let results: unknown[];
    try {
      results = await writeTransaction(this.#registry, async (trx) => {
        const out: unknown[] = [];
        for (const q of batch) out.push(await q.write(trx));
        return out;
      });
    } catch (err) {
      if (batch.length === 1 || isTransientRegistryError(err)) {
        for (const q of batch) q.reject(err);
        return;
      }
      for (const q of batch) await writeTransaction(this.#registry, q.write).then(q.resolve, q.reject);
      return;
    }
    batch.forEach((q, i) => q.resolve(results[i]));
  }
}
