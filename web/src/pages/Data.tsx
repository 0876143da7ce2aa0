import { useMemo, useState, type FormEvent } from 'react';
import { api, must } from '../api/client';
import type { Bars, Dataset, Regimes, Validation } from '../api/types';
import { LoadState, Section } from '../components/Bits';
import { Chart, seriesColor } from '../components/Chart';
import { Table } from '../components/Table';
import { fmtNum, fmtTime } from '../lib/format';
import { stackedBands, stateName } from '../lib/regimes';
import { useLocation, navigate } from '../lib/router';
import { useLoad } from '../lib/useLoad';

export default function Data() {
  const { query } = useLocation();
  const chosen = query.get('instrument') ?? '';
  const sets = useLoad(async () => must(await api.GET('/v1/datasets')) as Dataset[], []);
  const [typed, setTyped] = useState(chosen);
  const show = (instrument: string) => navigate(`/data?instrument=${encodeURIComponent(instrument)}`, true);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (typed.trim()) show(typed.trim());
  };
  return (
    <>
      <h1>Data</h1>
      <Section title="Prepared data sets">
        <LoadState state={sets}>
          {(rows) => (
            <Table
              caption="Data sets in data/final"
              testId="datasets-table"
              rows={rows}
              rowKey={(d) => `${d.instrument}-${d.timeframe ?? ''}`}
              columns={[
                { key: 'instrument', header: 'Instrument' },
                { key: 'timeframe', header: 'Timeframe' },
                { key: 'rows', header: 'Bars', numeric: true },
                { key: 'features', header: 'Features', value: (d) => d.features.length, numeric: true },
                { key: 'source_sha256', header: 'Source SHA-256', render: (d) => <code title={d.source_sha256}>{d.source_sha256.slice(0, 12)}</code> },
                {
                  key: 'chart',
                  header: 'Chart',
                  sortable: false,
                  render: (d) => (
                    <button type="button" onClick={() => show(d.instrument)} aria-label={`Chart ${d.instrument}`}>
                      Chart
                    </button>
                  ),
                },
              ]}
              empty="No prepared data sets (run tradelab data prepare); any instrument in data/raw can still be charted below."
            />
          )}
        </LoadState>
      </Section>
      <Section title="Price chart">
        <form className="filters" onSubmit={submit}>
          <div className="field">
            <label htmlFor="data-instrument">Instrument</label>
            <input id="data-instrument" value={typed} onChange={(e) => setTyped(e.target.value)} list="data-instruments" autoComplete="off" />
            <datalist id="data-instruments">
              {(sets.data ?? []).map((d) => (
                <option key={d.instrument} value={d.instrument} />
              ))}
            </datalist>
          </div>
          <button type="submit">Show</button>
        </form>
        {chosen ? <PriceSeries instrument={chosen} /> : <p className="muted">Pick an instrument.</p>}
      </Section>
    </>
  );
}

function PriceSeries({ instrument }: { instrument: string }) {
  const bars = useLoad(
    async () => must(await api.GET('/v1/datasets/{instrument}/bars', { params: { path: { instrument }, query: { max_points: 2000 } } })) as Bars,
    [instrument],
  );
  const series = useMemo(
    () => [
      {
        kind: 'candles' as const,
        data: (bars.data?.bars ?? []).map((b) => ({ time: Math.floor(b.time_ms / 1000), open: b.open, high: b.high, low: b.low, close: b.close })),
      },
    ],
    [bars.data],
  );
  return (
    <>
      <LoadState state={bars}>
        {(b) => (
          <>
            <p className="muted">
            {b.instrument} ({b.timeframe ?? 'timeframe unknown'}): {fmtNum(b.total_bars)} bars
            {b.bars_per_point > 1 ? `, ${b.bars_per_point} per candle` : ''}; {fmtTime(b.bars[0]?.time_ms)} to {fmtTime(b.bars[b.bars.length - 1]?.time_ms)}
          </p>
            <Chart series={series} label={`Price of ${b.instrument}`} testId="data-price-chart" height={380} />
          </>
        )}
      </LoadState>
      <RegimeChart instrument={instrument} />
      <Findings instrument={instrument} />
    </>
  );
}

/** The regime model fitted on the file's training split, and p(state) over time under the price chart. */
function RegimeChart({ instrument }: { instrument: string }) {
  const report = useLoad(
    async () => must(await api.GET('/v1/datasets/{instrument}/regimes', { params: { path: { instrument }, query: { max_points: 2000 } } })) as Regimes,
    [instrument],
  );
  const series = useMemo(() => {
    const r = report.data;
    if (!r) return [];
    const bands = stackedBands(r.points, r.states.length);
    // Widest band first, so each narrower one is drawn over it.
    return bands
      .map((data, i) => ({ kind: 'area' as const, solid: true, range: [0, 1] as [number, number], data, color: seriesColor(i), title: '' }))
      .reverse();
  }, [report.data]);
  return (
    <LoadState state={report}>
      {(r) => (
        <div data-testid="data-regimes">
          <h3>Market regimes</h3>
          <p className="muted">
            A Gaussian HMM with {r.states.length} states (chosen by BIC among {r.bic.map((b) => b.states).join(', ')}), fitted on{' '}
            {r.fitted_from > 0
              ? `the latest ${fmtNum(r.training_bars - r.fitted_from)} of the first ${fmtNum(r.training_bars)} bars (from ${r.fitted_from_ms != null ? fmtTime(r.fitted_from_ms) : 'bar ' + fmtNum(r.fitted_from)}; a long file is fitted on a bounded recent window)`
              : `the first ${fmtNum(r.training_bars)} bars`}
            {r.training_end_ms != null ? ` (to ${fmtTime(r.training_end_ms)})` : ''}; each bar's probabilities use no later bar.
            {r.bars_per_point > 1 ? ` Averaged over ${r.bars_per_point} bars per point.` : ''}
          </p>
          <ul className="legend">
            {r.states.map((s) => (
              <li key={s.state}>
                <span className="swatch" style={{ background: seriesColor(s.state) }} aria-hidden="true" /> {stateName(s.state, r.states.length)}
              </li>
            ))}
          </ul>
          <Chart series={series} label={`Probability of each market regime of ${r.instrument} over time`} testId="data-regime-chart" height={160} />
          <Table
            caption="States, calmest first, in a bar's units"
            testId="regime-states-table"
            rows={r.states}
            rowKey={(s) => String(s.state)}
            columns={[
              { key: 'state', header: 'State', render: (s) => stateName(s.state, r.states.length) },
              { key: 'mean_return', header: 'Return/bar', numeric: true, render: (s) => `${(s.mean_return * 100).toFixed(3)}%` },
              { key: 'volatility', header: 'Volatility/bar', numeric: true, render: (s) => `${(s.volatility * 100).toFixed(2)}%` },
              { key: 'trend_strength', header: 'Trend', numeric: true, render: (s) => s.trend_strength.toFixed(2) },
              { key: 'stay_probability', header: 'Stays', numeric: true, render: (s) => s.stay_probability.toFixed(3) },
              { key: 'share_training', header: 'Share: training', numeric: true, render: (s) => `${Math.round(s.share_training * 100)}%` },
              { key: 'share_after', header: 'After', numeric: true, render: (s) => `${Math.round(s.share_after * 100)}%` },
            ]}
          />
        </div>
      )}
    </LoadState>
  );
}

/** What validating the file found: its layout and each row dropped or repaired. */
function Findings({ instrument }: { instrument: string }) {
  const report = useLoad(
    async () => must(await api.GET('/v1/datasets/{instrument}/validation', { params: { path: { instrument } } })) as Validation,
    [instrument],
  );
  return (
    <LoadState state={report}>
      {(v) => (
        <div data-testid="data-validation">
          <h3>Validation</h3>
          <p className="muted">
            {v.layout}; {fmtNum(v.rows_read)} rows read, {fmtNum(v.rows_loaded)} kept: {fmtNum(v.dropped)} dropped, {fmtNum(v.repaired)} repaired
            {v.header_note ? `; ${v.header_note}` : ''}
            {v.adjusted_close_note ? `; ${v.adjusted_close_note}` : ''}
          </p>
          <Table
            caption={v.findings.length < v.dropped + v.repaired ? `The first ${v.findings.length} findings` : 'Every finding, in file order'}
            testId="validation-table"
            rows={v.findings}
            rowKey={(f) => `${f.line}-${f.action}`}
            columns={[
              { key: 'line', header: 'Line', numeric: true },
              { key: 'action', header: 'Action' },
              { key: 'message', header: 'Finding' },
            ]}
            empty="No row was dropped or repaired."
          />
        </div>
      )}
    </LoadState>
  );
}
