import { TaskStatus } from './terms.ts';

/** What a task's durations are read from: its status, when it was queued, its current attempt's times. */
export interface TaskTimes {
  status: TaskStatus;
  queuedAt: number;
  startedAt: number | null;
  endedAt: number | null;
}

/** How long a task waited, built and took in all, in ms; null where it has not (yet). */
export interface TaskDurations {
  queuedMs: number | null;
  buildMs: number | null;
  totalMs: number | null;
}

/**
 * A task's durations at `now`. An attempt that started before the task was last queued belongs to
 * an earlier round (a retry or a requeue since): it is not this round's build.
 */
export function taskDurations(t: TaskTimes, now: number): TaskDurations {
  const started = t.startedAt !== null && t.startedAt >= t.queuedAt ? t.startedAt : null;
  if (t.status === TaskStatus.needsBuild || started === null)
    return {
      queuedMs: t.status === TaskStatus.needsBuild ? Math.max(0, now - t.queuedAt) : null,
      buildMs: null,
      totalMs: null,
    };
  const building = t.status === TaskStatus.building;
  // An ended task whose attempt has no end yet (cancelled while it builds) has no build time yet.
  const ended = building ? now : t.endedAt;
  return {
    queuedMs: started - t.queuedAt,
    buildMs: ended === null ? null : ended - started,
    totalMs: building || ended === null ? null : ended - t.queuedAt,
  };
}

/** A duration for people: `850 ms`, `12 s`, `3 min 5 s`, `2 h 4 min`, `3 d 2 h`. */
export function displayDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const [m, h, d] = [Math.floor(s / 60), Math.floor(s / 3600), Math.floor(s / 86400)];
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/**
 * How long a job has taken: from its submission to its last change once every task has ended
 * (`ended`), else to `now` so far. A job without tasks has not ended.
 */
export function jobDuration(
  job: { since: number; modifiedAt: number; tasks: readonly { status: TaskStatus }[] },
  now: number,
): { ms: number; ended: boolean } {
  const ended =
    job.tasks.length > 0 &&
    job.tasks.every((t) => t.status !== TaskStatus.needsBuild && t.status !== TaskStatus.building);
  return { ms: (ended ? job.modifiedAt : now) - job.since, ended };
}
