import { describe, expect, it } from 'vitest';
import { optimizationSummary, verdictCall } from './format';

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

describe("an evaluation's verdict", () => {
  it('is cut to its call, after its figures', () => {
    expect(
      verdictCall('model vs buy-and-hold: Sharpe +1.05 vs -0.75, return +3.3% vs -2.9%, max drawdown 4.1% vs 6.1%: not distinguishable from buy-and-hold (p=0.260)'),
    ).toBe('not distinguishable from buy-and-hold (p=0.260)');
    expect(verdictCall('model vs buy-and-hold: Sharpe +0.00 vs +0.40, return +0.0% vs +5.1%, max drawdown 0.0% vs 3.0%: flat: no evidence of skill')).toBe(
      'flat: no evidence of skill',
    );
    expect(verdictCall('something else')).toBe('something else');
    expect(verdictCall(undefined)).toBeNull();
  });
});
