import { describe, expect, it } from 'vitest';
import type { TradingSession } from '../api/types';
import { correlations, pnl, positions } from './trading';

const session = (checkpoint: Record<string, unknown>): TradingSession =>
  ({ id: 's', account: 'paper:a', alive: true, model: 'm', run_here: true, spec: {}, started_ms: 0, status: 'running', checkpoint }) as TradingSession;

describe('trading session views', () => {
  it('names positions by the checkpoint symbols with their weights and volatility shares', () => {
    const s = session({ positions: [10, -5], symbols: ['aaa', 'bbb'], risk: { weights: [0.2, -0.1], contributions: [0.7, 0.3], correlation: [[1, 0.5], [0.5, 1]], returns: 40 } });
    expect(positions(s)).toEqual([
      { symbol: 'aaa', units: 10, weight: 0.2, contribution: 0.7 },
      { symbol: 'bbb', units: -5, weight: -0.1, contribution: 0.3 },
    ]);
    expect(correlations(s)).toEqual({ symbols: ['aaa', 'bbb'], matrix: [[1, 0.5], [0.5, 1]], returns: 40 });
  });

  it('keeps a correlation JSON wrote as null (NaN) as null, and has none before the first', () => {
    const s = session({ positions: [1, 2], symbols: ['a', 'b'], risk: { correlation: [[1, null], [null, null]], returns: 3 } });
    expect(correlations(s)?.matrix).toEqual([[1, null], [null, null]]);
    expect(correlations(session({ positions: [1] }))).toBeNull();
    expect(correlations(session({ risk: null }))).toBeNull();
  });

  it('reports P&L and drawdown from the checkpoint, and nothing it cannot know', () => {
    expect(pnl(session({ equity: 90, initial_equity: 100, equity_peak: 120, cash: 5 }))).toEqual({ equity: 90, cash: 5, pnl: -10, drawdown: 90 / 120 - 1 });
    expect(pnl(session({}))).toEqual({ equity: null, cash: null, pnl: null, drawdown: null });
  });
});
