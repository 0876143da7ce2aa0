import { describe, expect, it } from 'vitest';
import { optimizationSummary } from './format';

describe("a parameter search's result", () => {
  it('names the best combination, its score and the overfitting figures', () => {
    expect(
      optimizationSummary({ best: { fast: 10, slow: 40 }, score: 1.23456, metric: 'sharpe', combinations: 48, deflated_sharpe: 0.6234, pbo: 0.3125, report: 'x.json' }),
    ).toBe('fast=10, slow=40: sharpe 1.2346 (best of 48); deflated Sharpe 0.62; PBO 0.31');
  });

  it('leaves out what the search did not compute, and is null for other results', () => {
    expect(optimizationSummary({ best: { window: 20 }, score: 0.5, metric: 'total_return', deflated_sharpe: null, pbo: null })).toBe('window=20: total_return 0.5');
    expect(optimizationSummary({ backtest_id: 'b1' })).toBeNull();
    expect(optimizationSummary(null)).toBeNull();
  });
});
