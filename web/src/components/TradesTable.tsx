import { useState } from 'react';
import { saveBlob } from '../api/client';
import type { TradeRow } from '../api/types';
import { toCsv } from '../lib/csv';
import { fmtNum } from '../lib/format';
import { sortRows, Table, type Column, type SortState } from './Table';

export const TRADE_COLUMNS: Column<TradeRow>[] = [
  { key: 'instrument', header: 'Instrument' },
  { key: 'direction', header: 'Direction' },
  { key: 'entry_time', header: 'Entry' },
  { key: 'exit_time', header: 'Exit' },
  { key: 'quantity', header: 'Quantity', numeric: true },
  { key: 'entry_price', header: 'Entry price', numeric: true },
  { key: 'exit_price', header: 'Exit price', numeric: true },
  { key: 'pnl', header: 'P&L', numeric: true, render: (t) => <span className={t.pnl >= 0 ? 'gain' : 'loss'}>{fmtNum(t.pnl, 2)}</span> },
  { key: 'fees', header: 'Fees', numeric: true },
  { key: 'return_pct', header: 'Return %', numeric: true },
];

/** The trades as CSV, in the order shown. */
export function tradesCsv(trades: readonly TradeRow[], sort: SortState | null): string {
  const rows = sortRows(trades, TRADE_COLUMNS.find((c) => c.key === sort?.key), sort?.dir ?? 'asc');
  return toCsv(rows, TRADE_COLUMNS);
}

export function TradesTable({ trades, name = 'trades' }: { trades: TradeRow[]; name?: string }) {
  const [sort, setSort] = useState<SortState | null>(null);
  return (
    <>
      <div className="toolbar">
        <span className="muted">{trades.length} trades</span>
        <button type="button" onClick={() => saveBlob(new Blob([tradesCsv(trades, sort)], { type: 'text/csv' }), `${name}.csv`)}>
          Download CSV
        </button>
      </div>
      <Table caption="Round-trip trades; click a heading to sort" testId="trades-table" rows={trades} columns={TRADE_COLUMNS} rowKey={(_, i) => String(i)} sort={sort} onSortChange={setSort} />
    </>
  );
}
