/**
 * What a registry backend can do. Code outside registry/dialect/ branches on these, never on the
 * backend's name.
 */
export interface RegistryCapabilities {
  /** Human name for messages. */
  readonly backend: 'sqlite' | 'postgresql';
  /** The column type of an auto-incremented id in migrations. */
  readonly idColumn: 'integer' | 'serial';
  /**
   * A transaction that will write must take the write lock at its start (SQLite: BEGIN IMMEDIATE),
   * so two processes never deadlock upgrading read locks; PostgreSQL's row locks need no such thing.
   */
  readonly writeLockAtBegin: boolean;
  /** `FOR UPDATE SKIP LOCKED` is available (PostgreSQL); SQLite serialises writers instead. */
  readonly supportsSkipLocked: boolean;
  /** `LISTEN/NOTIFY` is available for waking idle daemons. */
  readonly supportsListenNotify: boolean;
  /**
   * An INSERT/UPDATE may be a WITH query of a statement (PostgreSQL), so a claim or a finish that
   * changes several tables is one statement and one round trip; SQLite runs them in one transaction.
   */
  readonly supportsDataModifyingCte: boolean;
  /** Row locks (`SELECT … FOR UPDATE`) are available; SQLite's IMMEDIATE transactions lock the whole database instead. */
  readonly supportsRowLocks: boolean;
  /**
   * The database server's clock in epoch milliseconds, as SQL. Leases are stamped and compared
   * with it, so builders on hosts with skewed clocks still agree on when a lease runs out.
   */
  readonly nowMsSql: string;
}
