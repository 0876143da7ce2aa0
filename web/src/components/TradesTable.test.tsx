import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import type { TradeRow } from '../api/types';
import { sortRows } from './Table';
import { TRADE_COLUMNS, TradesTable, tradesCsv } from './TradesTable';

const trade = (instrument: string, pnl: number, entry: string): TradeRow => ({
  instrument,
  direction: 'long',
  entry_time: entry,
  exit_time: entry.replace('01T', '02T'),
  quantity: 10,
  entry_price: 100,
  exit_price: 100 + pnl / 10,
  pnl,
  fees: 1.5,
  return_pct: pnl / 10,
});

const trades = [
  trade('orcl', 50, '2010-03-01T00:00:00'),
  trade('nvda, inc', -20, '2010-01-01T00:00:00'),
  trade('yhoo', 5, '2010-02-01T00:00:00'),
];

const pnlColumn = () => within(screen.getByTestId('trades-table')).getAllByRole('row').slice(1).map((r) => within(r).getAllByRole('cell')[7].textContent);

describe('TradesTable', () => {
  it('sorts by a column on click, then reverses, and says so to assistive tech', async () => {
    const user = userEvent.setup();
    render(<TradesTable trades={trades} />);
    expect(pnlColumn()).toEqual(['50', '-20', '5']);
    await user.click(screen.getByRole('button', { name: /P&L/ }));
    expect(pnlColumn()).toEqual(['-20', '5', '50']);
    expect(screen.getByRole('columnheader', { name: /P&L/ })).toHaveAttribute('aria-sort', 'ascending');
    await user.click(screen.getByRole('button', { name: /P&L/ }));
    expect(pnlColumn()).toEqual(['50', '5', '-20']);
    expect(screen.getByRole('columnheader', { name: /P&L/ })).toHaveAttribute('aria-sort', 'descending');
  });

  it('exports the rows as CSV in the sorted order, escaping fields', () => {
    const csv = tradesCsv(trades, { key: 'entry_time', dir: 'asc' });
    const lines = csv.trimEnd().split('\r\n');
    expect(lines[0]).toBe('Instrument,Direction,Entry,Exit,Quantity,Entry price,Exit price,P&L,Fees,Return %');
    expect(lines[1]).toBe('"nvda, inc",long,2010-01-01T00:00:00,2010-01-02T00:00:00,10,100,98,-20,1.5,-2');
    expect(lines.slice(1).map((l) => l.split(',').at(-3))).toEqual(['-20', '5', '50']);
  });

  it('sorts text naturally and keeps ties stable', () => {
    const col = TRADE_COLUMNS.find((c) => c.key === 'fees');
    expect(sortRows(trades, col, 'desc').map((t) => t.instrument)).toEqual(['orcl', 'nvda, inc', 'yhoo']);
    const rows = [{ k: 'a10' }, { k: 'a9' }, { k: null }];
    expect(sortRows(rows, { key: 'k', header: 'k' }, 'asc').map((r) => r.k)).toEqual(['a9', 'a10', null]);
    expect(sortRows(rows, { key: 'k', header: 'k' }, 'desc').map((r) => r.k)).toEqual(['a10', 'a9', null]);
  });
});
