// Regime probabilities as a stacked chart. The chart library has no
// stacked areas, so each band is an opaque area from zero up to the sum of
// its state and every calmer one, drawn widest first: what shows of each
// area is its own state's share.

import type { XY } from '../components/Chart';

export interface RegimePoint {
  time_ms: number;
  probabilities: number[];
}

/** One series per state, calmest first: the running sum of probabilities up to that state. */
export function stackedBands(points: readonly RegimePoint[], states: number): XY[][] {
  const bands: XY[][] = Array.from({ length: states }, () => []);
  for (const p of points) {
    let sum = 0;
    for (let i = 0; i < states; i++) {
      sum += p.probabilities[i] ?? 0;
      // The top band is the whole distribution: 1, whatever rounding says.
      bands[i].push({ time: Math.floor(p.time_ms / 1000), value: i === states - 1 ? 1 : Math.min(sum, 1) });
    }
  }
  return bands;
}

/** A state's name from its place among states ordered by volatility. */
export function stateName(state: number, states: number): string {
  if (states <= 1) return 'only state';
  if (state === 0) return 'calmest';
  if (state === states - 1) return 'most volatile';
  return `state ${state}`;
}
