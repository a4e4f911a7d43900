import { displayDuration } from '../core/durations.ts';

/**
 * Server-rendered SVG charts for the queue page: no client framework, no script. Every label is
 * made here from numbers and times, and escaped all the same.
 */

const W = 720;
const H = 180;
const PAD = { left: 56, right: 12, top: 12, bottom: 26 };
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

function frame(title: string, since: number, now: number, yMax: number, yLabel: (v: number) => string, body: string) {
  const x0 = PAD.left;
  const x1 = W - PAD.right;
  const y0 = H - PAD.bottom;
  const ticks = [0, 0.5, 1].map((f) => {
    const y = y0 - f * (y0 - PAD.top);
    return `<line x1="${x0}" x2="${x1}" y1="${y}" y2="${y}" stroke="#e3e6ec"/><text x="${x0 - 6}" y="${y + 4}" text-anchor="end">${esc(yLabel(f * yMax))}</text>`;
  });
  const times = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const x = x0 + f * (x1 - x0);
    const anchor = f === 0 ? 'start' : f === 1 ? 'end' : 'middle';
    return `<text x="${x}" y="${H - 8}" text-anchor="${anchor}">${esc(hhmm(since + f * (now - since)))}</text>`;
  });
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg" font-size="11" fill="#667085"><title>${esc(title)}</title>${ticks.join('')}${times.join('')}${body}</svg>`;
}

const xOf = (t: number, since: number, now: number) =>
  PAD.left + ((t - since) / (now - since)) * (W - PAD.left - PAD.right);
const yOf = (v: number, max: number) => H - PAD.bottom - (max === 0 ? 0 : v / max) * (H - PAD.top - PAD.bottom);

/** Waiting tasks over time, as an area; each point carries its depth for readers and tests. */
export function queueDepthChart(series: readonly { at: number; depth: number }[], since: number, now: number): string {
  const max = Math.max(1, ...series.map((p) => p.depth));
  const pts = series.map((p) => `${xOf(p.at, since, now).toFixed(1)},${yOf(p.depth, max).toFixed(1)}`);
  const area = `<polygon fill="#cfe0fb" points="${xOf(since, since, now)},${yOf(0, max)} ${pts.join(' ')} ${xOf(now, since, now)},${yOf(0, max)}"/>`;
  const line = `<polyline fill="none" stroke="#3b6fd4" stroke-width="1.5" points="${pts.join(' ')}"/>`;
  const dots = series
    .map(
      (p) =>
        `<circle class="depth" data-at="${new Date(p.at).toISOString()}" data-depth="${p.depth}" cx="${xOf(p.at, since, now).toFixed(1)}" cy="${yOf(p.depth, max).toFixed(1)}" r="1.5" fill="#3b6fd4"><title>${esc(`${hhmm(p.at)} UTC: ${p.depth} waiting`)}</title></circle>`,
    )
    .join('');
  return frame(
    'Tasks waiting for a builder, last 24 hours (UTC)',
    since,
    now,
    max,
    (v) => String(Math.round(v)),
    area + line + dots,
  );
}

/** Each build that ended, as a dot at its end and its duration, green or red by outcome. */
export function buildDurationChart(
  builds: readonly { endedAt: number; ms: number; outcome: string }[],
  since: number,
  now: number,
): string {
  const max = Math.max(1000, ...builds.map((b) => b.ms));
  const dots = builds
    .map(
      (b) =>
        `<circle class="build" data-ms="${b.ms}" data-outcome="${esc(b.outcome)}" cx="${xOf(b.endedAt, since, now).toFixed(1)}" cy="${yOf(b.ms, max).toFixed(1)}" r="2.5" fill="${b.outcome === 'success' ? '#3f9b4b' : b.outcome === 'fail' ? '#c0392b' : '#98a2b3'}" fill-opacity="0.7"><title>${esc(`${hhmm(b.endedAt)} UTC: ${b.outcome || 'ended'} after ${displayDuration(b.ms)}`)}</title></circle>`,
    )
    .join('');
  return frame('Build durations, last 24 hours (UTC)', since, now, max, (v) => displayDuration(v), dots);
}
