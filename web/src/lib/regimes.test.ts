import { describe, expect, it } from 'vitest';
import { stackedBands, stateName } from './regimes';

describe('regime bands', () => {
  it('stacks each state on the calmer ones, so the top band is 1 and each gap is a probability', () => {
    const bands = stackedBands(
      [
        { time_ms: 1_000, probabilities: [0.7, 0.2, 0.1] },
        { time_ms: 2_000, probabilities: [0.1, 0.3, 0.6000000001] },
      ],
      3,
    );
    expect(bands.map((b) => b.map((x) => x.time))).toEqual([[1, 2], [1, 2], [1, 2]]);
    expect(bands[0].map((x) => x.value)).toEqual([0.7, 0.1]);
    expect(bands[1][0].value).toBeCloseTo(0.9);
    expect(bands[1][1].value).toBeCloseTo(0.4);
    expect(bands[2].map((x) => x.value)).toEqual([1, 1]);
  });

  it('names the ends of the volatility order', () => {
    expect([0, 1, 2].map((s) => stateName(s, 3))).toEqual(['calmest', 'state 1', 'most volatile']);
    expect(stateName(0, 1)).toBe('only state');
  });
});
