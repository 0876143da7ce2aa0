import { api, must } from '../api/client';
import type { Job, Model, Run, TradingSession } from '../api/types';
import { LoadState, ProgressBar, Section, StatusBadge } from '../components/Bits';
import { Table } from '../components/Table';
import { fmtNum, fmtTime, jobFraction } from '../lib/format';
import { Link } from '../lib/router';
import { breakerAlerts, pnl } from '../lib/trading';
import { useLoad } from '../lib/useLoad';

export default function Overview() {
  const state = useLoad(
    async () => {
      const [runs, jobs, models, sessions] = await Promise.all([
        api.GET('/v1/runs', { params: { query: { limit: 8 } } }).then(must),
        api.GET('/v1/jobs', { params: { query: { limit: 50 } } }).then(must),
        api.GET('/v1/models').then(must),
        api.GET('/v1/trading-sessions', { params: { query: { limit: 50 } } }).then(must),
      ]);
      return {
        runs: runs as Run[],
        jobs: (jobs as Job[]).filter((j) => j.status === 'running' || j.status === 'queued' || j.status === 'cancel_requested'),
        production: (models as Model[]).filter((m) => m.stage === 'production'),
        sessions: (sessions as TradingSession[]).filter((s) => s.alive || s.status === 'running'),
        alerts: (sessions as TradingSession[]).flatMap((s) => breakerAlerts(s).map((b) => ({ session: s, ...b }))),
      };
    },
    [],
    { intervalMs: 5000 },
  );
  return (
    <>
      <h1>Overview</h1>
      <LoadState state={state}>
        {(d) => (
          <div className="grid">
            {d.alerts.length > 0 ? (
              <section className="card alert" aria-labelledby="alerts-h">
                <h2 id="alerts-h">Breaker alerts</h2>
                <ul>
                  {d.alerts.map((a) => (
                    <li key={`${a.session.id}-${a.kind}`}>
                      Session <Link href={`/trading?session=${encodeURIComponent(a.session.id)}`}>{a.session.id}</Link>: {a.kind.replace(/_/g, ' ')} breaker is{' '}
                      <StatusBadge status={a.state} />
                    </li>
                  ))}
                </ul>
              </section>
            ) : null}
            <Section title="Running jobs">
              {d.jobs.length === 0 ? (
                <p className="muted">No job is queued or running.</p>
              ) : (
                <ul className="plain">
                  {d.jobs.map((j) => (
                    <li key={j.id}>
                      <Link href="/jobs">{j.kind} {j.id.slice(0, 8)}</Link> <StatusBadge status={j.status} />
                      <ProgressBar fraction={jobFraction(j.progress)} label={`Progress of ${j.kind} job ${j.id.slice(0, 8)}`} />
                    </li>
                  ))}
                </ul>
              )}
            </Section>
            <Section title="Recent runs">
              <Table
                caption="The latest tracked runs"
                rows={d.runs}
                rowKey={(r) => r.id}
                columns={[
                  { key: 'name', header: 'Run', render: (r) => <Link href={`/runs/${r.id}`}>{r.name}</Link>, value: (r) => r.name },
                  { key: 'experiment', header: 'Experiment' },
                  { key: 'status', header: 'Status', render: (r) => <StatusBadge status={r.status} /> },
                  { key: 'started_ms', header: 'Started', value: (r) => r.started_ms, render: (r) => fmtTime(r.started_ms) },
                ]}
                empty="No runs recorded yet."
              />
            </Section>
            <Section title="Production models">
              <Table
                caption="Model versions in production"
                rows={d.production}
                rowKey={(m) => `${m.name}@${m.version}`}
                columns={[
                  { key: 'name', header: 'Model' },
                  { key: 'version', header: 'Version', numeric: true },
                  { key: 'created_ms', header: 'Registered', render: (m) => fmtTime(m.created_ms) },
                ]}
                empty="No model is in production."
              />
            </Section>
            <Section title="Open trading sessions">
              <Table
                caption="Trading sessions that are running"
                rows={d.sessions}
                rowKey={(s) => s.id}
                columns={[
                  { key: 'id', header: 'Session', render: (s) => <Link href={`/trading?session=${encodeURIComponent(s.id)}`}>{s.id}</Link> },
                  { key: 'model', header: 'Model' },
                  { key: 'equity', header: 'Equity', numeric: true, value: (s) => pnl(s).equity, render: (s) => fmtNum(pnl(s).equity, 2) },
                  { key: 'pnl', header: 'P&L', numeric: true, value: (s) => pnl(s).pnl, render: (s) => fmtNum(pnl(s).pnl, 2) },
                ]}
                empty="No trading session is open."
              />
            </Section>
          </div>
        )}
      </LoadState>
    </>
  );
}
