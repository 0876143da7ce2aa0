// A thin wrapper over TradingView's lightweight-charts: the chart lives in a
// ref'd div, follows the container's size and the theme, and is disposed
// on unmount. Series are described as data; a change replaces them.

import { useEffect, useRef } from 'react';
import {
  AreaSeries,
  CandlestickSeries,
  ColorType,
  createChart,
  createSeriesMarkers,
  HistogramSeries,
  LineSeries,
  type IChartApi,
  type ISeriesApi,
  type SeriesMarker,
  type SeriesType,
  type Time,
  type UTCTimestamp,
} from 'lightweight-charts';
import { useTheme } from '../lib/theme';

export interface Candle {
  time: number; // seconds
  open: number;
  high: number;
  low: number;
  close: number;
}
export interface XY {
  time: number; // seconds, or the step for step axes
  value: number;
}

export type SeriesSpec =
  | { kind: 'candles'; data: Candle[]; markers?: SeriesMarker<Time>[] }
  | {
      kind: 'line' | 'area' | 'histogram';
      data: XY[];
      title?: string;
      color?: string;
      /** An opaque area (for stacked bands). */
      solid?: boolean;
      /** A fixed value range, such as [0, 1] for probabilities: the scale fits it exactly. */
      range?: [number, number];
    };

export interface ChartProps {
  series: SeriesSpec[];
  /** Accessible name of the chart (a canvas has no text of its own). */
  label: string;
  testId: string;
  height?: number;
  /** `step`: the x values are training steps, not times. */
  axis?: 'time' | 'step';
  /** Percent formatting of the price scale (drawdowns). */
  percent?: boolean;
}

const PALETTE = ['#2f7ed8', '#e4572e', '#17a398', '#f3a712', '#8e44ad', '#6c8ead', '#c0392b', '#27ae60'];
export const seriesColor = (i: number) => PALETTE[i % PALETTE.length];

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

/** Sorted by time with one value per time: the library refuses anything else. */
export function cleanSeries<T extends { time: number }>(data: readonly T[]): T[] {
  const sorted = data.filter((d) => Number.isFinite(d.time)).slice().sort((a, b) => a.time - b.time);
  const out: T[] = [];
  for (const d of sorted) {
    if (out.length && out[out.length - 1].time === d.time) out[out.length - 1] = d;
    else out.push(d);
  }
  return out;
}

export function Chart({ series, label, testId, height = 300, axis = 'time', percent = false }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const chart = useRef<IChartApi | null>(null);
  const live = useRef<ISeriesApi<SeriesType>[]>([]);
  const { theme } = useTheme();

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const c = createChart(el, {
      width: el.clientWidth || 600,
      height,
      layout: { attributionLogo: false, background: { type: ColorType.Solid, color: 'transparent' } },
      rightPriceScale: { borderVisible: false },
      timeScale: {
        borderVisible: false,
        timeVisible: axis === 'time',
        secondsVisible: false,
        // Step axes carry training steps where the library expects times.
        ...(axis === 'step' ? { tickMarkFormatter: (t: Time) => String(t) } : {}),
      },
      ...(axis === 'step' ? { localization: { timeFormatter: (t: Time) => `step ${String(t)}` } } : {}),
    });
    if (percent) c.applyOptions({ localization: { priceFormatter: (p: number) => `${(p * 100).toFixed(1)}%` } });
    chart.current = c;
    const ro = new ResizeObserver((entries) => {
      const w = Math.floor(entries[0]?.contentRect.width ?? 0);
      if (w > 0) c.resize(w, height);
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      live.current = [];
      chart.current = null;
      c.remove();
    };
  }, [height, axis, percent]);

  useEffect(() => {
    chart.current?.applyOptions({
      layout: { textColor: cssVar('--muted', '#666'), background: { type: ColorType.Solid, color: cssVar('--surface', '#fff') } },
      grid: {
        vertLines: { color: cssVar('--grid', '#eee') },
        horzLines: { color: cssVar('--grid', '#eee') },
      },
    });
  }, [theme, height, axis, percent]);

  useEffect(() => {
    const c = chart.current;
    if (!c) return;
    for (const s of live.current) c.removeSeries(s);
    live.current = [];
    series.forEach((spec, i) => {
      const color = spec.kind === 'candles' ? undefined : spec.color ?? seriesColor(i);
      if (spec.kind === 'candles') {
        const s = c.addSeries(CandlestickSeries, {
          upColor: '#16a34a',
          downColor: '#dc2626',
          borderVisible: false,
          wickUpColor: '#16a34a',
          wickDownColor: '#dc2626',
        });
        s.setData(cleanSeries(spec.data).map((d) => ({ ...d, time: d.time as UTCTimestamp })));
        if (spec.markers?.length) createSeriesMarkers(s, spec.markers);
        live.current.push(s);
        return;
      }
      const data = cleanSeries(spec.data).map((d) => ({ time: d.time as UTCTimestamp, value: d.value }));
      const range = spec.range;
      const common = {
        title: spec.title ?? '',
        priceLineVisible: false,
        lastValueVisible: true,
        ...(range ? { autoscaleInfoProvider: () => ({ priceRange: { minValue: range[0], maxValue: range[1] } }) } : {}),
      };
      if (range) c.priceScale('right').applyOptions({ scaleMargins: { top: 0.02, bottom: 0 } });
      const s =
        spec.kind === 'line'
          ? c.addSeries(LineSeries, { ...common, color, lineWidth: 2 })
          : spec.kind === 'area'
            ? c.addSeries(
                AreaSeries,
                spec.solid
                  ? { ...common, lineColor: color, lineWidth: 1, topColor: color, bottomColor: color, lastValueVisible: false }
                  : { ...common, lineColor: color, topColor: `${color}55`, bottomColor: `${color}05` },
              )
            : c.addSeries(HistogramSeries, { ...common, color });
      s.setData(data);
      live.current.push(s);
    });
    c.timeScale().fitContent();
  }, [series]);

  return <div ref={box} className="chart" role="img" aria-label={label} data-testid={testId} style={{ height }} />;
}
