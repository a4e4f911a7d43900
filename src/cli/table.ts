/**
 * A table for the terminal: columns padded to their widest cell, two spaces apart; the last column
 * (a reason, free text) is not padded, so a long one does not widen every row.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i < headers.length - 1 ? c.padEnd(widths[i]!) : c))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}
