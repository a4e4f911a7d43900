import { queueDepthSeries } from '../core/queue-history.ts';
import { queueHistory } from '../registry/queue-history.ts';
import type { Registry } from '../registry/registry.ts';
import { buildDurationChart, queueDepthChart } from './charts.ts';

const DAY_MS = 24 * 3600_000;
/** Half-hour slots: 49 points over the day. */
const STEP_MS = 1800_000;
/** The charts change slowly; they are drawn at most once a minute and shared by every request. */
const MAX_AGE_MS = 60_000;

const drawn = new WeakMap<Registry, { at: number; charts: Promise<{ depth: string; durations: string }> }>();

/** The queue page's charts of the last 24 hours, as SVG: queue depth and build durations. */
export function queueCharts(registry: Registry, now = Date.now()): Promise<{ depth: string; durations: string }> {
  const kept = drawn.get(registry);
  if (kept && now - kept.at < MAX_AGE_MS) return kept.charts;
  const since = now - DAY_MS;
  const charts = queueHistory(registry.db, since, STEP_MS).then(({ waits, builds }) => ({
    depth: queueDepthChart(queueDepthSeries(waits, since, now, DAY_MS / STEP_MS + 1), since, now),
    durations: buildDurationChart(builds, since, now),
  }));
  drawn.set(registry, { at: now, charts });
  charts.catch(() => drawn.get(registry)?.charts === charts && drawn.delete(registry));
  return charts;
}
