/** A wait for a builder, from queued until claimed (null: still waiting), of `count` tasks. */
export interface Wait {
  from: number;
  until: number | null;
  count: number;
}

/**
 * The queue's depth at `points` evenly spaced times from `since` to `now` (the last is `now`):
 * how many tasks were waiting then, by the waits that covered each time.
 */
export function queueDepthSeries(
  waits: readonly Wait[],
  since: number,
  now: number,
  points: number,
): { at: number; depth: number }[] {
  const step = (now - since) / (points - 1);
  return Array.from({ length: points }, (_, i) => {
    const at = Math.round(since + i * step);
    let depth = 0;
    for (const w of waits) if (w.from <= at && (w.until === null || w.until > at)) depth += w.count;
    return { at, depth };
  });
}
