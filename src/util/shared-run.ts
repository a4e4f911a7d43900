/**
 * Lets callers share the runs of an idempotent operation that must happen after their own work
 * (an fsync of a directory after their renames, a wake-up after their commits): a call while no
 * run is in progress starts one; a call while one runs waits for the next, which starts as soon as
 * that one ends and serves every call made meanwhile. So every caller's promise settles after a
 * run that began after its call, and N callers at once cost two runs, not N.
 */
export function sharedRuns(run: () => Promise<void>): () => Promise<void> {
  let current: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const start = (): Promise<void> => {
    const p = run().finally(() => {
      if (current === p) current = null;
    });
    current = p;
    return p;
  };
  return () => {
    if (current === null) return start();
    next ??= current
      .catch(() => {})
      .then(() => {
        next = null;
        return start();
      });
    return next;
  };
}
