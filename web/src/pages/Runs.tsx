import { useMemo, useState } from 'react';
import { api, must } from '../api/client';
import type { Point, Run } from '../api/types';
import { LoadState, Section, StatusBadge } from '../components/Bits';
import { Chart, type SeriesSpec } from '../components/Chart';
import { ProblemMessage } from '../components/ProblemMessage';
import { Table } from '../components/Table';
import { fmtTime } from '../lib/format';
import { Link } from '../lib/router';
import { useLoad } from '../lib/useLoad';

export function filterRuns(runs: Run[], f: { experiment: string; status: string; text: string }): Run[] {
  const text = f.text.trim().toLowerCase();
  return runs.filter(
    (r) =>
      (!f.experiment || r.experiment === f.experiment) &&
      (!f.status || r.status === f.status) &&
      (!text || r.name.toLowerCase().includes(text) || r.id.startsWith(text)),
  );
}

export default function Runs() {
  const state = useLoad(async () => must(await api.GET('/v1/runs', { params: { query: { limit: 500 } } })) as Run[], [], {
    intervalMs: 15000,
  });
  const [experiment, setExperiment] = useState('');
  const [status, setStatus] = useState('');
  const [text, setText] = useState('');
  const [selected, setSelected] = useState<string[]>([]);
  const runs = state.data ?? [];
  const experiments = useMemo(() => [...new Set(runs.map((r) => r.experiment))].sort(), [runs]);
  const statuses = useMemo(() => [...new Set(runs.map((r) => r.status))].sort(), [runs]);
  const shown = filterRuns(runs, { experiment, status, text });
  const toggle = (id: string) => setSelected((s) => (s.includes(id) ? s.filter((x) => x !== id) : [...s, id]));

  return (
    <>
      <h1>Runs</h1>
      <form className="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div className="field">
          <label htmlFor="run-experiment">Experiment</label>
          <select id="run-experiment" value={experiment} onChange={(e) => setExperiment(e.target.value)}>
            <option value="">All</option>
            {experiments.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="run-status">Status</label>
          <select id="run-status" value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="">All</option>
            {statuses.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="run-text">Name contains</label>
          <input id="run-text" type="search" value={text} onChange={(e) => setText(e.target.value)} />
        </div>
      </form>
      <LoadState state={state}>
        {() => (
          <Table
            caption="Runs, newest first; tick two or more to compare a metric"
            testId="runs-table"
            rows={shown}
            rowKey={(r) => r.id}
            columns={[
              {
                key: 'pick',
                header: 'Compare',
                sortable: false,
                render: (r) => (
                  <input
                    type="checkbox"
                    aria-label={`Compare run ${r.name} (${r.id.slice(0, 8)})`}
                    checked={selected.includes(r.id)}
                    onChange={() => toggle(r.id)}
                  />
                ),
              },
              { key: 'name', header: 'Run', value: (r) => r.name, render: (r) => <Link href={`/runs/${r.id}`}>{r.name}</Link> },
              { key: 'experiment', header: 'Experiment' },
              { key: 'status', header: 'Status', render: (r) => <StatusBadge status={r.status} /> },
              { key: 'started_ms', header: 'Started', render: (r) => fmtTime(r.started_ms) },
              { key: 'ended_ms', header: 'Ended', render: (r) => fmtTime(r.ended_ms) },
            ]}
            empty="No runs match."
          />
        )}
      </LoadState>
      {selected.length >= 2 ? <Compare runs={runs.filter((r) => selected.includes(r.id))} /> : null}
    </>
  );
}

function Compare({ runs }: { runs: Run[] }) {
  const ids = runs.map((r) => r.id).join(',');
  const metrics = useLoad(
    async () =>
      Promise.all(
        runs.map(async (r) => ({
          run: r,
          series: must(await api.GET('/v1/runs/{id}/metrics', { params: { path: { id: r.id } } })) as Record<string, Point[]>,
        })),
      ),
    [ids],
  );
  const keys = useMemo(() => {
    const all = (metrics.data ?? []).map((m) => new Set(Object.keys(m.series)));
    if (!all.length) return [];
    return [...all[0]].filter((k) => all.every((s) => s.has(k))).sort();
  }, [metrics.data]);
  const [key, setKey] = useState('');
  const metric = keys.includes(key) ? key : keys[0] ?? '';
  const series: SeriesSpec[] = useMemo(
    () =>
      (metrics.data ?? []).map((m) => ({
        kind: 'line' as const,
        title: m.run.name,
        data: (m.series[metric] ?? []).map((p) => ({ time: p.step, value: p.value })),
      })),
    [metrics.data, metric],
  );
  return (
    <Section title={`Compare ${runs.length} runs`}>
      <ProblemMessage problem={metrics.problem} />
      {keys.length === 0 ? (
        <p className="muted">{metrics.loading ? 'Loading metrics…' : 'These runs share no metric.'}</p>
      ) : (
        <>
          <div className="field inline">
            <label htmlFor="compare-metric">Metric</label>
            <select id="compare-metric" value={metric} onChange={(e) => setKey(e.target.value)}>
              {keys.map((k) => (
                <option key={k}>{k}</option>
              ))}
            </select>
          </div>
          <Chart series={series} axis="step" label={`${metric} of the selected runs by step`} testId="compare-chart" />
          <ul className="legend">
            {runs.map((r, i) => (
              <li key={r.id}>
                <span className={`swatch s${i % 8}`} aria-hidden="true" /> {r.name} ({r.id.slice(0, 8)})
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}
