import { useEffect, useRef, useState } from 'react';
import { api, must, saveBlob } from '../api/client';
import { asProblem, type Problem } from '../api/problem';
import type { Job } from '../api/types';
import { useAuth } from '../auth/AuthProvider';
import { LoadState, ProgressBar, Section, StatusBadge } from '../components/Bits';
import { ProblemMessage } from '../components/ProblemMessage';
import { Table } from '../components/Table';
import { TrainForm } from '../components/TrainForm';
import { fmtTime, jobFraction, optimizationSummary, TERMINAL_JOB, verdictCall } from '../lib/format';
import { logText, useJobLog } from '../lib/jobLog';
import { Link, navigate, useLocation } from '../lib/router';
import { useJobEvents } from '../lib/useJob';
import { useLoad } from '../lib/useLoad';

/** Links to what a finished job produced. */
function JobResult({ job }: { job: Job }) {
  const r = job.result ?? {};
  if (Array.isArray(r.backtest_ids) && r.backtest_ids.length) {
    // An evaluation: one report per instrument and fold, each with its call.
    const calls = Array.isArray(r.verdicts) ? r.verdicts.map(verdictCall) : [];
    return (
      <span data-testid="evaluation-result">
        {String(r.model ?? 'model')}:{' '}
        {(r.backtest_ids as string[]).map((id, i) => (
          <span key={id}>
            {i ? '; ' : ''}
            <Link href={`/backtests/${id}`}>{calls[i] ?? `report ${i + 1}`}</Link>
          </span>
        ))}
      </span>
    );
  }
  if (typeof r.backtest_id === 'string') return <Link href={`/backtests/${r.backtest_id}`}>report</Link>;
  if (typeof r.model === 'string')
    return (
      <span>
        <Link href="/models">
          {r.model} v{String(r.version ?? '?')}
        </Link>
        {typeof r.run_id === 'string' ? (
          <>
            {' '}
            (<Link href={`/runs/${r.run_id}`}>run</Link>)
          </>
        ) : null}
      </span>
    );
  const search = optimizationSummary(r);
  if (search) return <span data-testid="optimization-result">{search}</span>;
  return <>—</>;
}

/** A running job's row cell, kept live by its event stream. */
function LiveProgress({ job }: { job: Job }) {
  const { job: live } = useJobEvents(job.id, job);
  const j = live ?? job;
  return (
    <span data-testid={`job-live-${job.id}`} data-status={j.status}>
      <StatusBadge status={j.status} /> <ProgressBar fraction={jobFraction(j.progress)} label={`Progress of job ${job.id.slice(0, 8)}`} />
    </span>
  );
}

/** A job's log, followed while it runs: the process's output, its errors, and the worker's notes. */
function JobLogPanel({ id }: { id: string }) {
  const log = useJobLog(id);
  const box = useRef<HTMLPreElement>(null);
  const [follow, setFollow] = useState(true);
  useEffect(() => {
    const el = box.current;
    if (el && follow) el.scrollTop = el.scrollHeight;
  }, [log.lines.length, follow]);
  return (
    <div data-testid="job-log-panel" data-complete={log.complete ? 'true' : 'false'}>
      <p className="muted">
        Job <code>{id.slice(0, 8)}</code>: {log.lines.length} lines{log.status ? `, ${log.status}` : ''}
        {log.complete ? '' : '; following'}.{' '}
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Keep the end in view
        </label>{' '}
        <button type="button" disabled={!log.lines.length} onClick={() => saveBlob(new Blob([logText(log.lines)], { type: 'text/plain' }), `job-${id.slice(0, 8)}.log`)}>
          Download
        </button>{' '}
        <button type="button" onClick={() => navigate('/jobs', true)}>
          Close
        </button>
      </p>
      <ProblemMessage problem={log.problem} />
      <pre className="log" ref={box} data-testid="job-log" tabIndex={0} aria-label={`Log of job ${id.slice(0, 8)}`}>
        {log.lines.map((l) => (
          <span key={l.seq} className={`log-${l.stream}`} title={`attempt ${l.attempt}, ${fmtTime(l.at_ms)}`}>
            {l.stream === 'stdout' ? '' : `[${l.stream}] `}
            {l.line}
            {'\n'}
          </span>
        ))}
      </pre>
    </div>
  );
}

export default function Jobs() {
  const { can } = useAuth();
  const { query } = useLocation();
  const shownLog = query.get('log');
  const jobs = useLoad(async () => must(await api.GET('/v1/jobs', { params: { query: { limit: 100 } } })) as Job[], [], { intervalMs: 5000 });
  const [problem, setProblem] = useState<Problem | null>(null);
  const [started, setStarted] = useState<string | null>(null);
  const cancel = async (j: Job) => {
    setProblem(null);
    try {
      await api.POST('/v1/jobs/{id}/cancel', { params: { path: { id: j.id } } }).then(must);
      jobs.reload();
    } catch (e) {
      setProblem(asProblem(e));
    }
  };
  const rows = jobs.data ?? [];
  // One stream per running job is plenty; older ones show their polled state.
  const streamed = new Set(rows.filter((j) => j.status === 'running').slice(0, 4).map((j) => j.id));
  return (
    <>
      <h1>Jobs</h1>
      {can('train') ? (
        <Section title="Train a model">
          <TrainForm
            onStarted={(j) => {
              setStarted(j.id);
              jobs.reload();
            }}
          />
          {started ? (
            <p role="status" data-testid="train-started">
              Training job <code>{started.slice(0, 8)}</code> queued.
            </p>
          ) : null}
        </Section>
      ) : null}
      <ProblemMessage problem={problem} />
      <Section title="Queue">
        <LoadState state={jobs}>
          {() => (
            <Table
              caption="Jobs, newest first"
              testId="jobs-table"
              rows={rows}
              rowKey={(j) => j.id}
              columns={[
                { key: 'id', header: 'Job', render: (j) => <code data-testid="job-id">{j.id.slice(0, 8)}</code> },
                { key: 'kind', header: 'Kind' },
                {
                  key: 'status',
                  header: 'Status',
                  render: (j) =>
                    streamed.has(j.id) ? (
                      <LiveProgress job={j} />
                    ) : (
                      <span data-testid={`job-status-${j.id}`} data-status={j.status}>
                        <StatusBadge status={j.status} />
                        {j.status === 'running' ? <ProgressBar fraction={jobFraction(j.progress)} label={`Progress of job ${j.id.slice(0, 8)}`} /> : null}
                      </span>
                    ),
                },
                { key: 'result', header: 'Result', sortable: false, render: (j) => (j.error ? <span className="error-text">{j.error}</span> : <JobResult job={j} />) },
                { key: 'created_ms', header: 'Queued', render: (j) => fmtTime(j.created_ms) },
                {
                  key: 'log',
                  header: 'Log',
                  sortable: false,
                  render: (j) => (
                    <button type="button" onClick={() => navigate(`/jobs?log=${encodeURIComponent(j.id)}`, true)} aria-label={`Log of ${j.kind} job ${j.id.slice(0, 8)}`}>
                      Log
                    </button>
                  ),
                },
                {
                  key: 'cancel',
                  header: 'Cancel',
                  sortable: false,
                  render: (j) =>
                    !TERMINAL_JOB.has(j.status) && can(j.kind) ? (
                      <button type="button" onClick={() => void cancel(j)} aria-label={`Cancel ${j.kind} job ${j.id.slice(0, 8)}`}>
                        Cancel
                      </button>
                    ) : null,
                },
              ]}
              empty="No jobs yet."
            />
          )}
        </LoadState>
      </Section>
      {shownLog ? (
        <Section title="Log">
          <JobLogPanel key={shownLog} id={shownLog} />
        </Section>
      ) : null}
    </>
  );
}
