/**
 * The order a task builds its job's packages in, the original's: each in the job's order; one that
 * fails (typically for a build dependency that a later package of the job provides) is tried again
 * at the back, pass after pass, for as long as a pass builds something. With the error policy
 * `immediate` the first failure ends it. Every builder (rpmbuild, mock, a Debian one) uses this; what
 * trying one package means is the builder's (`tryOne`, which may throw to stop everything).
 */
export interface BuildOrderOptions<T> {
  errorPolicy: 'retry' | 'immediate';
  /** Told before each pass after the first, with the packages it retries. */
  onRetry?: (items: T[]) => void;
}

export interface BuildOrderResult<T> {
  /** The packages that did not build, in the order they were last tried. */
  failed: T[];
  /** The error policy `immediate` ended it at the first failure. */
  gaveUpEarly: boolean;
}

export async function buildInOrder<T>(
  items: readonly T[],
  tryOne: (item: T) => Promise<boolean>,
  options: BuildOrderOptions<T>,
): Promise<BuildOrderResult<T>> {
  let todo = [...items];
  for (;;) {
    const failed: T[] = [];
    for (const item of todo) {
      if (await tryOne(item)) continue;
      failed.push(item);
      if (options.errorPolicy === 'immediate') return { failed, gaveUpEarly: true };
    }
    // Done, or no progress in this pass: what is left will not build.
    if (failed.length === 0 || failed.length === todo.length) return { failed, gaveUpEarly: false };
    options.onRetry?.(failed);
    todo = failed;
  }
}
