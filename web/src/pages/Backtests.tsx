import { useEffect, useState } from 'react';
import { api, must } from '../api/client';
import type { BacktestSummary, Job } from '../api/types';
import { useAuth } from '../auth/AuthProvider';
import { BacktestForm } from '../components/BacktestForm';
import { LoadState, ProgressBar, Section, StatusBadge } from '../components/Bits';
import { ProblemMessage } from '../components/ProblemMessage';
import { Table } from '../components/Table';
import { fmtTime, jobFraction } from '../lib/format';
import { Link, navigate } from '../lib/router';
import { useJobEvents } from '../lib/useJob';
import { useLoad } from '../lib/useLoad';

export default function Backtests() {
  const { can } = useAuth();
  const list = useLoad(async () => must(await api.GET('/v1/backtests', { params: { query: { limit: 100 } } })) as BacktestSummary[], []);
  const [started, setStarted] = useState<Job | null>(null);
  return (
    <>
      <h1>Backtests</h1>
      {can('backtest') ? (
        <Section title="Start a backtest or an evaluation">
          <BacktestForm onStarted={setStarted} />
          {started ? <FollowBacktest job={started} onDone={list.reload} /> : null}
        </Section>
      ) : null}
      <Section title="Stored backtests">
        <LoadState state={list}>
          {(rows) => (
            <Table
              caption="Stored backtests, newest first"
              testId="backtests-table"
              rows={rows}
              rowKey={(b) => b.id}
              columns={[
                { key: 'id', header: 'Report', render: (b) => <Link href={`/backtests/${b.id}`}>{b.id.slice(0, 12)}</Link> },
                { key: 'strategy', header: 'Strategy' },
                { key: 'run_id', header: 'Run', render: (b) => (b.run_id ? <Link href={`/runs/${b.run_id}`}>{b.run_id.slice(0, 8)}</Link> : '—') },
                { key: 'created_ms', header: 'Stored', render: (b) => fmtTime(b.created_ms) },
              ]}
              empty="No backtest stored yet."
            />
          )}
        </LoadState>
      </Section>
    </>
  );
}

/** The started job's progress as it arrives; opens the report when it is done. */
function FollowBacktest({ job, onDone }: { job: Job; onDone: () => void }) {
  const { job: live, ended, problem, events } = useJobEvents(job.id, job);
  const j = live ?? job;
  const reportId = typeof j.result?.backtest_id === 'string' ? (j.result.backtest_id as string) : null;
  useEffect(() => {
    if (!ended) return;
    onDone();
    if (j.status === 'finished' && reportId) navigate(`/backtests/${reportId}`);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [ended]);
  return (
    <div className="follow" data-testid="backtest-follow" aria-live="polite">
      <p>
        Job <code>{j.id.slice(0, 8)}</code> <StatusBadge status={j.status} /> <span className="muted" data-testid="event-count">{events} updates</span>
      </p>
      <ProgressBar fraction={j.status === 'finished' ? 1 : jobFraction(j.progress)} label="Backtest progress" />
      {j.error ? <pre className="error-text">{j.error}</pre> : null}
      <ProblemMessage problem={problem} />
      {reportId ? <Link href={`/backtests/${reportId}`}>Open the report</Link> : null}
    </div>
  );
}
