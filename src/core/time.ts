/** Epoch milliseconds as ISO 8601 for APIs and JSON, or null. */
export const isoTime = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Epoch milliseconds for people, with the time zone said: `2026-11-23 19:46:39 UTC`, or `-`. */
export const displayTime = (ms: number | null): string =>
  ms === null ? '-' : `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
