// A backtest's statistics (app::backtest_statistics) in sentences: the
// Sharpe ratio with its interval, the chance it is above zero, how it
// compares with buy-and-hold's and, for a model's evaluation, the deflated
// Sharpe ratio for the trials it took. Null when the report carries none of them.

import { fmtNum } from './format';

const n2 = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(2) : '—');
const signed = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)}` : '—');

export function statisticsSentences(stats: Record<string, unknown>): string[] | null {
  if (typeof stats.sharpe !== 'number' || typeof stats.sharpe_low !== 'number' || typeof stats.sharpe_high !== 'number') return null;
  const pct = typeof stats.confidence === 'number' ? `${Math.round(stats.confidence * 100)}%` : 'the';
  const out = [
    `Sharpe ratio ${n2(stats.sharpe)}, ${pct} interval ${n2(stats.sharpe_low)} to ${n2(stats.sharpe_high)} (stationary bootstrap, ${fmtNum(stats.resamples)} resamples of ${fmtNum(stats.bars)} returns).`,
  ];
  if (typeof stats.probability_sharpe_above_zero === 'number') out.push(`Probability that the true Sharpe ratio is above zero: ${n2(stats.probability_sharpe_above_zero)}.`);
  if (typeof stats.sharpe_minus_benchmark === 'number')
    out.push(
      `Against buy-and-hold: ${signed(stats.sharpe_minus_benchmark)} (interval ${signed(stats.difference_low)} to ${signed(stats.difference_high)}, p = ${typeof stats.difference_p_value === 'number' ? stats.difference_p_value.toFixed(3) : '—'}).`,
    );
  if (typeof stats.deflated_sharpe === 'number') {
    const trials = typeof stats.trials === 'number' ? stats.trials : 1;
    out.push(
      trials > 1
        ? `Deflated Sharpe ratio for ${fmtNum(trials)} trials: ${n2(stats.deflated_sharpe)} (the probability that the true Sharpe ratio beats the best of ${fmtNum(trials)} unskilled trials).`
        : `Deflated Sharpe ratio for 1 trial: ${n2(stats.deflated_sharpe)} (with one trial, the probability that the true Sharpe ratio is above zero).`,
    );
  }
  return out;
}
