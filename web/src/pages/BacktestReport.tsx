import { useMemo, useState } from 'react';
import type { SeriesMarker, Time } from 'lightweight-charts';
import { api, getJson, must } from '../api/client';
import type { Bars, EquityPoint, Obj, TradeRow } from '../api/types';
import { JsonView, LoadState, Section } from '../components/Bits';
import { Chart, type Candle } from '../components/Chart';
import { TradesTable } from '../components/TradesTable';
import { fmtNum, reportTimeSec } from '../lib/format';
import { Link } from '../lib/router';
import { useLoad } from '../lib/useLoad';
import { statisticsSentences } from '../lib/statistics';

/** The latest candle at or before `t` (candles sorted): markers must sit on a candle. */
export function snapToCandle(times: number[], t: number): number | null {
  if (!times.length || t < times[0]) return times.length ? times[0] : null;
  let lo = 0;
  let hi = times.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (times[mid] <= t) lo = mid;
    else hi = mid - 1;
  }
  return times[lo];
}

export function tradeMarkers(trades: TradeRow[], instrument: string, candleTimes: number[]): SeriesMarker<Time>[] {
  const out: SeriesMarker<Time>[] = [];
  for (const t of trades) {
    if (t.instrument !== instrument) continue;
    const long = t.direction.toLowerCase() === 'long';
    const entry = snapToCandle(candleTimes, reportTimeSec(t.entry_time));
    const exit = snapToCandle(candleTimes, reportTimeSec(t.exit_time));
    if (entry !== null)
      out.push({ time: entry as Time, position: long ? 'belowBar' : 'aboveBar', shape: long ? 'arrowUp' : 'arrowDown', color: long ? '#16a34a' : '#dc2626', text: long ? 'L' : 'S' });
    if (exit !== null)
      out.push({ time: exit as Time, position: long ? 'aboveBar' : 'belowBar', shape: 'circle', color: t.pnl >= 0 ? '#2563eb' : '#f59e0b', text: 'x' });
  }
  return out.sort((a, b) => (a.time as number) - (b.time as number));
}

const METRIC_ORDER = [
  'total_pnl', 'total_return', 'cagr', 'annual_volatility', 'sharpe', 'sortino', 'calmar', 'max_drawdown',
  'max_drawdown_duration_bars', 'total_trades', 'win_rate', 'profit_factor', 'avg_trade_pnl', 'avg_trade_return_pct',
  'exposure', 'turnover', 'fees_paid',
];

/** The report's metrics and, where it carries them, its baselines' metrics: one column each. */
export function metricColumns(report: Obj): { name: string; metrics: Obj }[] {
  const cols: { name: string; metrics: Obj }[] = [{ name: String(report.model_used ?? 'strategy'), metrics: (report.metrics ?? {}) as Obj }];
  const baselines = report.baselines;
  if (Array.isArray(baselines)) {
    for (const b of baselines as Obj[]) cols.push({ name: String(b.name ?? b.model_used ?? b.strategy ?? 'baseline'), metrics: ((b.metrics ?? b) as Obj) });
  } else if (baselines && typeof baselines === 'object') {
    for (const [name, b] of Object.entries(baselines as Obj)) cols.push({ name, metrics: (((b as Obj).metrics ?? b) as Obj) });
  }
  return cols;
}

export default function BacktestReport({ id }: { id: string }) {
  const base = `/v1/backtests/${encodeURIComponent(id)}`;
  const report = useLoad(() => getJson<Obj>(base), [id]);
  const trades = useLoad(async () => ((await getJson<TradeRow[] | null>(`${base}/trades`)) ?? []) as TradeRow[], [id]);
  const equity = useLoad(async () => ((await getJson<EquityPoint[] | null>(`${base}/equity`)) ?? []) as EquityPoint[], [id]);
  return (
    <>
      <p>
        <Link href="/backtests">← Backtests</Link>
      </p>
      <h1>Backtest {id.slice(0, 12)}</h1>
      <LoadState state={report}>
        {(r) => (
          <>
            <EvaluationFacts report={r} />
            <dl className="facts" data-testid="report-facts">
              <dt>{r.evaluation ? 'Model kind' : 'Strategy'}</dt>
              <dd>{String(r.model_used ?? '—')}</dd>
              <dt>Instruments</dt>
              <dd>{Array.isArray(r.instruments) ? (r.instruments as string[]).join(', ') : '—'}</dd>
              <dt>Period</dt>
              <dd>
                {String(r.start_date ?? '')} – {String(r.end_date ?? '')}
              </dd>
              <dt>Fill policy</dt>
              <dd>{String(r.fill_policy ?? '—')}</dd>
              <dt>Start → end</dt>
              <dd>
                {fmtNum(r.portfolio_start, 2)} → {fmtNum(r.portfolio_end, 2)} {String(r.currency ?? '')}
              </dd>
            </dl>
            <PriceChart report={r} trades={trades.data ?? []} />
          </>
        )}
      </LoadState>
      <LoadState state={equity}>
        {(eq) => (
          <div className="grid charts">
            <Section title="Equity">
              <Chart series={[{ kind: 'line', data: eq.map((p) => ({ time: reportTimeSec(p.time), value: p.equity })) }]} label="Equity curve" testId="equity-chart" height={260} />
            </Section>
            <Section title="Drawdown">
              <Chart
                series={[{ kind: 'area', color: '#dc2626', data: eq.map((p) => ({ time: reportTimeSec(p.time), value: p.drawdown })) }]}
                label="Drawdown below the running peak"
                testId="drawdown-chart"
                height={260}
                percent
              />
            </Section>
          </div>
        )}
      </LoadState>
      <LoadState state={report}>{(r) => <MetricsSection report={r} />}</LoadState>
      <Section title="Trades">
        <LoadState state={trades}>{(t) => <TradesTable trades={t} name={`backtest-${id}-trades`} />}</LoadState>
      </Section>
    </>
  );
}

function PriceChart({ report, trades }: { report: Obj; trades: TradeRow[] }) {
  const instruments = Array.isArray(report.instruments) ? (report.instruments as string[]) : [];
  const [instrument, setInstrument] = useState(instruments[0] ?? '');
  const from = typeof report.start_date === 'string' && report.start_date ? Date.parse(`${report.start_date}T00:00:00Z`) : null;
  const to = typeof report.end_date === 'string' && report.end_date ? Date.parse(`${report.end_date}T23:59:59Z`) : null;
  const bars = useLoad(
    async () =>
      instrument
        ? (must(
            await api.GET('/v1/datasets/{instrument}/bars', {
              params: { path: { instrument }, query: { max_points: 2000, ...(from ? { from_ms: from } : {}), ...(to ? { to_ms: to } : {}) } },
            }),
          ) as Bars)
        : null,
    [instrument, from, to],
  );
  const candles: Candle[] = useMemo(
    () => (bars.data?.bars ?? []).map((b) => ({ time: Math.floor(b.time_ms / 1000), open: b.open, high: b.high, low: b.low, close: b.close })),
    [bars.data],
  );
  const markers = useMemo(() => tradeMarkers(trades, instrument, candles.map((c) => c.time)), [trades, instrument, candles]);
  const series = useMemo(() => [{ kind: 'candles' as const, data: candles, markers }], [candles, markers]);
  return (
    <Section
      title="Price and trades"
      actions={
        instruments.length > 1 ? (
          <div className="field inline">
            <label htmlFor="report-instrument">Instrument</label>
            <select id="report-instrument" value={instrument} onChange={(e) => setInstrument(e.target.value)}>
              {instruments.map((i) => (
                <option key={i}>{i}</option>
              ))}
            </select>
          </div>
        ) : null
      }
    >
      <LoadState state={bars}>
        {(b) =>
          b ? (
            <>
              <p className="muted">
                {b.instrument}: {fmtNum(b.total_bars)} bars{b.bars_per_point > 1 ? `, ${b.bars_per_point} per candle` : ''}; arrows mark entries (L long, S short), circles exits.
              </p>
              <Chart series={series} label={`Price of ${b.instrument} with trade entries and exits`} testId="price-chart" height={360} />
            </>
          ) : (
            <p className="muted">The report names no instrument.</p>
          )
        }
      </LoadState>
    </Section>
  );
}

/** A model evaluation's model, split and verdict, above the report's facts; nothing for a rule backtest. */
function EvaluationFacts({ report }: { report: Obj }) {
  const e = report.evaluation as Obj | undefined;
  if (!e || typeof e !== 'object') return null;
  const unseen = Array.isArray(e.unseen_instruments) ? (e.unseen_instruments as string[]) : [];
  const seen = Array.isArray(e.seen_bars) ? (e.seen_bars as string[]) : [];
  return (
    <div className="evaluation" data-testid="evaluation-facts">
      <p>
        Evaluation of model <strong>{String(e.model)}</strong> on its {String(e.split)} split, out of sample and after costs: {String(e.run)}.
      </p>
      <p data-testid="evaluation-verdict" className={e.flat ? 'notice' : undefined}>
        {String(e.verdict)}
      </p>
      {e.short_sample ? <p className="notice">Under three months or 30 bars: its annualised figures are noise.</p> : null}
      {unseen.length ? <p>Never seen in training: {unseen.join(', ')} (traded through its unknown-instrument embedding).</p> : null}
      {seen.length ? <p className="notice">Not out of sample: the model learnt from {seen.join('; ')}.</p> : null}
    </div>
  );
}

function MetricsSection({ report }: { report: Obj }) {
  const cols = metricColumns(report);
  const keys = [...new Set(cols.flatMap((c) => Object.keys(c.metrics)))].filter((k) => cols.some((c) => typeof c.metrics[k] !== 'object' || c.metrics[k] === null));
  keys.sort((a, b) => (METRIC_ORDER.indexOf(a) + 1 || 99) - (METRIC_ORDER.indexOf(b) + 1 || 99) || a.localeCompare(b));
  const stats = report.statistics ?? report.stats;
  const riskEvents = Array.isArray(report.risk_events) ? (report.risk_events as unknown[]) : [];
  return (
    <>
      <Section title="Metrics">
        <div className="table-wrap" tabIndex={0} role="region" aria-label="Metrics">
          <table data-testid="metrics-table">
            <caption>{cols.length > 1 ? `The ${report.evaluation ? 'model' : 'strategy'} and its baselines side by side` : 'The strategy’s metrics'}</caption>
            <thead>
              <tr>
                <th scope="col">Metric</th>
                {cols.map((c) => (
                  <th scope="col" className="num" key={c.name}>
                    {c.name}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {keys.map((k) => (
                <tr key={k}>
                  <th scope="row">{k.replace(/_/g, ' ')}</th>
                  {cols.map((c) => (
                    <td className="num" key={c.name}>
                      {fmtNum(c.metrics[k])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
      {stats ? (
        <Section title="Statistics">
          <div data-testid="backtest-statistics">
            <StatsView stats={stats as Obj} />
          </div>
        </Section>
      ) : null}
      {riskEvents.length ? (
        <Section title={`Risk events (${riskEvents.length})`}>
          <JsonView value={riskEvents.slice(0, 200)} label="Risk events of the backtest" />
        </Section>
      ) : null}
    </>
  );
}

/** Confidence intervals, deflated Sharpe and the like: figures shown flat, the rest as JSON. */
function StatsView({ stats }: { stats: Obj }) {
  const flat = Object.entries(stats).filter(([, v]) => typeof v !== 'object' || v === null);
  const nested = Object.entries(stats).filter(([, v]) => typeof v === 'object' && v !== null);
  const sentences = statisticsSentences(stats);
  return (
    <>
      {sentences ? (
        <ul data-testid="statistics-summary">
          {sentences.map((line) => (
            <li key={line}>{line}</li>
          ))}
        </ul>
      ) : null}
      {flat.length ? (
        <dl className="facts">
          {flat.map(([k, v]) => (
            <div key={k} className="fact">
              <dt>{k.replace(/_/g, ' ')}</dt>
              <dd>{fmtNum(v)}</dd>
            </div>
          ))}
        </dl>
      ) : null}
      {nested.map(([k, v]) => {
        const iv = v as Obj;
        if (typeof iv.lower === 'number' && typeof iv.upper === 'number') {
          return (
            <p key={k}>
              {k.replace(/_/g, ' ')}: {fmtNum(iv.estimate ?? iv.value)} (interval {fmtNum(iv.lower)} to {fmtNum(iv.upper)})
            </p>
          );
        }
        return <JsonView key={k} value={v} label={k} />;
      })}
    </>
  );
}
