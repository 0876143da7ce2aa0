// CSV (RFC 4180): fields with a comma, quote or line break are quoted, and
// quotes inside doubled. Cells that a spreadsheet would run as a formula
// are prefixed with a quote mark (OWASP "CSV injection").

export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let s = typeof value === 'number' ? (Number.isFinite(value) ? String(value) : '') : String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s) && !/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(s)) {
    s = `'${s}`;
  }
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv<T>(rows: readonly T[], columns: readonly { key: string; header: string; value?: (row: T) => unknown }[]): string {
  const head = columns.map((c) => csvCell(c.header)).join(',');
  const body = rows.map((r) =>
    columns.map((c) => csvCell(c.value ? c.value(r) : (r as Record<string, unknown>)[c.key])).join(','),
  );
  return [head, ...body].join('\r\n') + '\r\n';
}
