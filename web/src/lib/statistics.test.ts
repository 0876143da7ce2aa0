import { describe, expect, it } from 'vitest';
import { statisticsSentences } from './statistics';

describe("a backtest's statistics in sentences", () => {
  it('gives the interval, the chance of a positive Sharpe and the comparison with buy-and-hold', () => {
    expect(
      statisticsSentences({
        bars: 1499, confidence: 0.95, resamples: 2000, sharpe: 0.0673, sharpe_low: -0.9699, sharpe_high: 1.1168,
        probability_sharpe_above_zero: 0.5541, sharpe_minus_benchmark: 0.391, difference_low: -0.5846, difference_high: 1.4449, difference_p_value: 0.4718,
      }),
    ).toEqual([
      'Sharpe ratio 0.07, 95% interval -0.97 to 1.12 (stationary bootstrap, 2,000 resamples of 1,499 returns).',
      'Probability that the true Sharpe ratio is above zero: 0.55.',
      'Against buy-and-hold: +0.39 (interval −0.58 to +1.44, p = 0.472).',
    ]);
  });

  it("adds a model evaluation's deflated Sharpe ratio, naming the trials it deflates for", () => {
    const base = { bars: 300, confidence: 0.95, resamples: 2000, sharpe: 0.8, sharpe_low: -0.2, sharpe_high: 1.7 };
    expect(statisticsSentences({ ...base, deflated_sharpe: 0.3141, trials: 24 })?.at(-1)).toBe(
      'Deflated Sharpe ratio for 24 trials: 0.31 (the probability that the true Sharpe ratio beats the best of 24 unskilled trials).',
    );
    expect(statisticsSentences({ ...base, deflated_sharpe: 0.71, trials: 1 })?.at(-1)).toContain('for 1 trial: 0.71');
    expect(statisticsSentences(base)?.join(' ')).not.toContain('Deflated');
  });

  it('leaves out the comparison for buy-and-hold itself, and is null without a Sharpe interval', () => {
    const s = statisticsSentences({ confidence: 0.9, resamples: 10, bars: 5, sharpe: 1, sharpe_low: 0.5, sharpe_high: 1.5, sharpe_minus_benchmark: null });
    expect(s).toHaveLength(1);
    expect(s?.[0]).toContain('90% interval 0.50 to 1.50');
    expect(statisticsSentences({ deflated_sharpe: 0.4 })).toBeNull();
  });
});
