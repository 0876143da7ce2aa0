// A table with sortable columns (click or Enter on a header). Sorting is a
// pure function so it can be tested without rendering.

import { useMemo, useState, type ReactNode } from 'react';

export interface Column<T> {
  key: string;
  header: string;
  /** The value sorted on and, without `render`, shown. */
  value?: (row: T) => unknown;
  render?: (row: T) => ReactNode;
  numeric?: boolean;
  sortable?: boolean;
}

export type SortDir = 'asc' | 'desc';
export type SortState = { key: string; dir: SortDir };

/** A click on a header: ascending first, then flip. */
export function nextSort(s: SortState | null | undefined, key: string): SortState {
  return s?.key === key ? { key, dir: s.dir === 'asc' ? 'desc' : 'asc' } : { key, dir: 'asc' };
}

export function cellValue<T>(row: T, c: Column<T>): unknown {
  return c.value ? c.value(row) : (row as Record<string, unknown>)[c.key];
}

function compare(a: unknown, b: unknown): number {
  const empty = (v: unknown) => v === null || v === undefined || (typeof v === 'number' && Number.isNaN(v));
  if (empty(a) || empty(b)) return empty(a) === empty(b) ? 0 : empty(a) ? 1 : -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), 'en', { numeric: true });
}

/** A stable sort; empty values last in either direction. */
export function sortRows<T>(rows: readonly T[], col: Column<T> | undefined, dir: SortDir): T[] {
  if (!col) return rows.slice();
  return rows
    .map((r, i) => ({ r, i }))
    .sort((x, y) => {
      const va = cellValue(x.r, col);
      const vb = cellValue(y.r, col);
      const emptyA = va === null || va === undefined;
      const emptyB = vb === null || vb === undefined;
      if (emptyA !== emptyB) return emptyA ? 1 : -1;
      const c = compare(va, vb);
      return (dir === 'asc' ? c : -c) || x.i - y.i;
    })
    .map((x) => x.r);
}

function show(v: unknown): ReactNode {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') return Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: 4 }) : '—';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

export function Table<T>({
  rows,
  columns,
  caption,
  rowKey,
  testId,
  initialSort,
  empty = 'Nothing yet.',
  sort: controlled,
  onSortChange,
}: {
  rows: readonly T[];
  columns: Column<T>[];
  caption: string;
  rowKey: (row: T, i: number) => string;
  testId?: string;
  initialSort?: { key: string; dir: SortDir };
  empty?: string;
  /** Controlled sorting, for a parent that needs the order (CSV export). */
  sort?: SortState | null;
  onSortChange?: (s: SortState) => void;
}) {
  const [own, setOwn] = useState<SortState | null>(initialSort ?? null);
  const sort = controlled !== undefined ? controlled : own;
  const sorted = useMemo(
    () => sortRows(rows, columns.find((c) => c.key === sort?.key), sort?.dir ?? 'asc'),
    [rows, columns, sort],
  );
  const toggle = (key: string) => {
    const next = nextSort(sort, key);
    setOwn(next);
    onSortChange?.(next);
  };
  return (
    // Focusable so a keyboard can scroll a wide table on a phone.
    <div className="table-wrap" tabIndex={0} role="region" aria-label={caption}>
      <table data-testid={testId}>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => {
              const active = sort?.key === c.key;
              const ariaSort = active ? (sort!.dir === 'asc' ? 'ascending' : 'descending') : undefined;
              return (
                <th key={c.key} scope="col" aria-sort={ariaSort} className={c.numeric ? 'num' : undefined}>
                  {c.sortable === false ? (
                    c.header
                  ) : (
                    <button type="button" className="sort" onClick={() => toggle(c.key)}>
                      {c.header}
                      <span aria-hidden="true">{active ? (sort!.dir === 'asc' ? ' ▲' : ' ▼') : ''}</span>
                    </button>
                  )}
                </th>
              );
            })}
          </tr>
        </thead>
        <tbody>
          {sorted.length === 0 ? (
            <tr>
              <td colSpan={columns.length} className="empty">
                {empty}
              </td>
            </tr>
          ) : (
            sorted.map((r, i) => (
              <tr key={rowKey(r, i)}>
                {columns.map((c) => (
                  <td key={c.key} className={c.numeric ? 'num' : undefined}>
                    {c.render ? c.render(r) : show(cellValue(r, c))}
                  </td>
                ))}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}
