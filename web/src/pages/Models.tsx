import { useMemo, useState } from 'react';
import { api, downloadFile, getJson, must } from '../api/client';
import { asProblem, type Problem } from '../api/problem';
import type { BacktestSummary, Model, Obj } from '../api/types';
import { useAuth } from '../auth/AuthProvider';
import { JsonView, LoadState, Section, StatusBadge } from '../components/Bits';
import { ProblemMessage } from '../components/ProblemMessage';
import { Table } from '../components/Table';
import { fmtNum, fmtTime } from '../lib/format';
import { Link } from '../lib/router';
import { useLoad } from '../lib/useLoad';

const key = (m: Model) => `${m.name}@${m.version}`;

/** Whether the registry's checksum is the one the checkpoint's metadata records. */
export function checksumState(m: Model): 'matches' | 'differs' | 'files removed' | 'unknown' {
  if (!m.location) return 'files removed';
  const recorded = (m.metadata as { weights_sha256?: unknown } | null)?.weights_sha256;
  if (typeof recorded !== 'string') return 'unknown';
  return recorded === m.checksum ? 'matches' : 'differs';
}

/** The validation and test figures a version's metadata carries, flattened. */
export function figures(m: Model | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!m) return out;
  const md = (m.metadata ?? {}) as Record<string, unknown>;
  const add = (prefix: string, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) if (typeof x !== 'object' || x === null) out[`${prefix}.${k}`] = x;
    }
  };
  for (const k of ['validation', 'best_validation', 'test', 'test_metrics']) add(k, md[k]);
  for (const k of ['train_return_moving_average', 'parameters', 'trained_at']) if (k in md) out[k] = md[k];
  return out;
}

/** A stored evaluation's test figures, named as the comparison shows them. */
export function testFigures(report: Obj | null | undefined): Record<string, unknown> {
  if (!report || typeof report !== 'object') return {};
  const m = (report.metrics ?? {}) as Obj;
  const st = (report.statistics ?? {}) as Obj;
  const e = (report.evaluation ?? {}) as Obj;
  const split = typeof e.split === 'string' ? e.split : 'test';
  const out: Record<string, unknown> = {};
  const put = (k: string, v: unknown) => {
    if (v !== undefined) out[`${split}.${k}`] = v;
  };
  put('total_return', m.total_return);
  put('sharpe', m.sharpe);
  put('max_drawdown', m.max_drawdown);
  put('total_trades', m.total_trades);
  put('sharpe_low', st.sharpe_low);
  put('sharpe_high', st.sharpe_high);
  put('sharpe_minus_buy_and_hold', st.sharpe_minus_benchmark);
  put('difference_p_value', st.difference_p_value);
  put('deflated_sharpe', st.deflated_sharpe);
  return out;
}

/** The newest stored evaluation of a version (`model NAME@VERSION`), if any. */
function useLatestEvaluation(version: string) {
  return useLoad(async () => {
    const list = must(await api.GET('/v1/backtests', { params: { query: { strategy: `model ${version}`, limit: 1 } } })) as BacktestSummary[];
    if (!list.length) return null;
    return { id: list[0].id, report: await getJson<Obj>(`/v1/backtests/${encodeURIComponent(list[0].id)}`) };
  }, [version]);
}

export default function Models() {
  const { can } = useAuth();
  const state = useLoad(async () => must(await api.GET('/v1/models')) as Model[], []);
  const [selected, setSelected] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [notice, setNotice] = useState('');
  const models = state.data ?? [];
  const current = models.find((m) => key(m) === selected);
  const writable = can('models:write');

  const setStage = async (m: Model, stage: string) => {
    setBusy(`${key(m)}:${stage}`);
    setProblem(null);
    try {
      await api
        .POST('/v1/models/{name}/{version}/stage', {
          params: { path: { name: m.name, version: String(m.version) } },
          body: { stage },
        })
        .then(must);
      setNotice(`${m.name} version ${m.version} is now ${stage}.`);
      state.reload();
    } catch (e) {
      setProblem(asProblem(e));
    } finally {
      setBusy(null);
    }
  };

  const download = async (m: Model) => {
    setProblem(null);
    try {
      await downloadFile(
        `/v1/models/${encodeURIComponent(m.name)}/${m.version}/download`,
        `${m.name}-v${m.version}.safetensors`,
      );
    } catch (e) {
      setProblem(asProblem(e));
    }
  };

  return (
    <>
      <h1>Models</h1>
      <ProblemMessage problem={problem} />
      <p className="notice" role="status" data-testid="models-notice">
        {notice}
      </p>
      <LoadState state={state}>
        {() => (
          <Table
            caption="Registered model versions"
            testId="models-table"
            rows={models}
            rowKey={key}
            initialSort={{ key: 'created_ms', dir: 'desc' }}
            columns={[
              { key: 'name', header: 'Model' },
              { key: 'version', header: 'Version', numeric: true },
              { key: 'stage', header: 'Stage', render: (m) => <StatusBadge status={m.stage} /> },
              {
                key: 'checksum',
                header: 'Checksum',
                value: checksumState,
                render: (m) => (
                  <span title={m.checksum}>
                    <code>{m.checksum.slice(0, 12)}</code> {checksumState(m)}
                  </span>
                ),
              },
              { key: 'run_id', header: 'Run', render: (m) => (m.run_id ? <Link href={`/runs/${m.run_id}`}>{m.run_id.slice(0, 8)}</Link> : '—') },
              { key: 'created_ms', header: 'Registered', render: (m) => fmtTime(m.created_ms) },
              {
                key: 'actions',
                header: 'Actions',
                sortable: false,
                render: (m) => (
                  <div className="actions">
                    <button type="button" onClick={() => setSelected(key(m))} aria-label={`Details of ${m.name} version ${m.version}`}>
                      Details
                    </button>
                    <button type="button" onClick={() => void download(m)} disabled={!m.location} aria-label={`Download ${m.name} version ${m.version}`}>
                      Download
                    </button>
                    {writable ? (
                      <>
                        {m.stage !== 'staging' ? (
                          <button type="button" disabled={busy !== null} onClick={() => void setStage(m, 'staging')} aria-label={`Promote ${m.name} version ${m.version} to staging`}>
                            To staging
                          </button>
                        ) : null}
                        {m.stage !== 'production' ? (
                          <button type="button" disabled={busy !== null} onClick={() => void setStage(m, 'production')} aria-label={`Promote ${m.name} version ${m.version} to production`}>
                            To production
                          </button>
                        ) : null}
                        {m.stage !== 'archived' ? (
                          <button type="button" disabled={busy !== null} onClick={() => void setStage(m, 'archived')} aria-label={`Archive ${m.name} version ${m.version}`}>
                            Archive
                          </button>
                        ) : null}
                      </>
                    ) : null}
                  </div>
                ),
              },
            ]}
            empty="No model is registered yet. Train one from the Jobs page."
          />
        )}
      </LoadState>
      {current ? (
        <Section title={`${current.name} version ${current.version}: metadata.json`}>
          <dl className="facts">
            <dt>Framework</dt>
            <dd>{current.framework}</dd>
            <dt>Location</dt>
            <dd>{current.location || 'removed by garbage collection'}</dd>
            <dt>Checksum (SHA-256)</dt>
            <dd>
              <code className="wrap">{current.checksum}</code> ({checksumState(current)})
            </dd>
          </dl>
          <JsonView value={current.metadata} label={`metadata.json of ${current.name} version ${current.version}`} />
        </Section>
      ) : null}
      {models.length >= 2 ? <CompareVersions models={models} /> : null}
    </>
  );
}

function CompareVersions({ models }: { models: Model[] }) {
  const [a, setA] = useState(key(models[0]));
  const [b, setB] = useState(key(models[1]));
  const left = models.find((m) => key(m) === a);
  const right = models.find((m) => key(m) === b);
  const ea = useLatestEvaluation(a);
  const eb = useLatestEvaluation(b);
  const fa = useMemo(() => ({ ...figures(left), ...testFigures(ea.data?.report) }), [left, ea.data]);
  const fb = useMemo(() => ({ ...figures(right), ...testFigures(eb.data?.report) }), [right, eb.data]);
  const rows = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  const pick = (id: string, label: string, v: string, set: (v: string) => void) => (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select id={id} value={v} onChange={(e) => set(e.target.value)}>
        {models.map((m) => (
          <option key={key(m)} value={key(m)}>
            {m.name} v{m.version} ({m.stage})
          </option>
        ))}
      </select>
    </div>
  );
  return (
    <Section title="Compare two versions">
      <div className="filters">
        {pick('cmp-a', 'First version', a, setA)}
        {pick('cmp-b', 'Second version', b, setB)}
      </div>
      <div className="table-wrap" tabIndex={0} role="region" aria-label="Validation and test figures side by side">
        <table>
          <caption>Validation and test figures side by side</caption>
          <thead>
            <tr>
              <th scope="col">Figure</th>
              <th scope="col" className="num">
                {a}
              </th>
              <th scope="col" className="num">
                {b}
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 ? (
              <tr>
                <td colSpan={3} className="empty">
                  Neither version records validation or test figures.
                </td>
              </tr>
            ) : (
              rows.map((r) => (
                <tr key={r}>
                  <th scope="row">{r}</th>
                  <td className="num">{fmtNum(fa[r])}</td>
                  <td className="num">{fmtNum(fb[r])}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
      <p className="muted" data-testid="compare-evaluations">
        Test figures come from each version&apos;s newest stored evaluation (out of sample, after costs). <EvaluationLink version={a} found={ea.data} />;{' '}
        <EvaluationLink version={b} found={eb.data} />.
      </p>
    </Section>
  );
}

/** A version's newest evaluation: its verdict, linking to the report. */
function EvaluationLink({ version, found }: { version: string; found: { id: string; report: Obj } | null | undefined }) {
  const verdict = (found?.report.evaluation as Obj | undefined)?.verdict;
  return (
    <>
      {version}:{' '}
      {found ? <Link href={`/backtests/${found.id}`}>{typeof verdict === 'string' ? verdict : 'its report'}</Link> : 'not evaluated yet (on the Backtests page)'}
    </>
  );
}
