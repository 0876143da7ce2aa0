import { describe, expect, it } from 'vitest';
import { testFigures } from './Models';

describe("a version's test figures from its stored evaluation", () => {
  it('takes the metrics and the statistics under the split it was evaluated on', () => {
    const report = {
      metrics: { total_return: 0.033, sharpe: 1.05, max_drawdown: -0.04, total_trades: 15, fees_paid: 925 },
      statistics: { sharpe_low: -1.35, sharpe_high: 3.29, sharpe_minus_benchmark: 1.8, difference_p_value: 0.26, deflated_sharpe: 0.79 },
      evaluation: { split: 'test', verdict: 'model vs buy-and-hold: …' },
    };
    expect(testFigures(report)).toEqual({
      'test.total_return': 0.033,
      'test.sharpe': 1.05,
      'test.max_drawdown': -0.04,
      'test.total_trades': 15,
      'test.sharpe_low': -1.35,
      'test.sharpe_high': 3.29,
      'test.sharpe_minus_buy_and_hold': 1.8,
      'test.difference_p_value': 0.26,
      'test.deflated_sharpe': 0.79,
    });
    expect(Object.keys(testFigures({ ...report, evaluation: { split: 'validation' } }))[0]).toBe('validation.total_return');
  });

  it('is empty without an evaluation', () => {
    expect(testFigures(null)).toEqual({});
    expect(testFigures(undefined)).toEqual({});
    expect(testFigures({})).toEqual({});
  });
});
