import { api, must } from '../api/client';
import type { Point, Run } from '../api/types';
import { JsonView, LoadState, Section, StatusBadge } from '../components/Bits';
import { Chart } from '../components/Chart';
import { fmtNum, fmtTime } from '../lib/format';
import { Link } from '../lib/router';
import { useLoad } from '../lib/useLoad';

export default function RunDetail({ id }: { id: string }) {
  const run = useLoad(async () => must(await api.GET('/v1/runs/{id}', { params: { path: { id } } })) as Run, [id], {
    intervalMs: 5000,
  });
  const running = run.data?.status === 'running';
  // A running run's metrics grow: poll them every few seconds until it ends.
  const metrics = useLoad(
    async () => must(await api.GET('/v1/runs/{id}/metrics', { params: { path: { id } } })) as Record<string, Point[]>,
    [id],
    { intervalMs: running ? 4000 : null },
  );
  return (
    <>
      <p>
        <Link href="/runs">← Runs</Link>
      </p>
      <LoadState state={run}>
        {(r) => (
          <>
            <h1>
              Run {r.name} <StatusBadge status={r.status} />
            </h1>
            <dl className="facts">
              <dt>Id</dt>
              <dd>
                <code>{r.id}</code>
              </dd>
              <dt>Experiment</dt>
              <dd>{r.experiment}</dd>
              <dt>Started</dt>
              <dd>{fmtTime(r.started_ms)}</dd>
              <dt>Ended</dt>
              <dd>{fmtTime(r.ended_ms)}</dd>
            </dl>
            <Section title="Parameters">
              <JsonView value={r.params} label="Run parameters" />
            </Section>
          </>
        )}
      </LoadState>
      <LoadState state={metrics}>
        {(m) => {
          const keys = Object.keys(m).sort();
          if (!keys.length) return <p className="muted">No metrics logged yet.</p>;
          return (
            <div className="grid charts">
              {keys.map((k) => {
                const pts = m[k];
                const last = pts[pts.length - 1];
                return (
                  <Section key={k} title={k}>
                    <p className="muted">
                      {pts.length} points; last {fmtNum(last?.value)} at step {fmtNum(last?.step)}
                    </p>
                    <Chart
                      series={[{ kind: 'line', data: pts.map((p) => ({ time: p.step, value: p.value })) }]}
                      axis="step"
                      height={220}
                      label={`${k} by step`}
                      testId={`metric-chart-${k}`}
                    />
                  </Section>
                );
              })}
            </div>
          );
        }}
      </LoadState>
    </>
  );
}
