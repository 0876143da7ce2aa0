import { useState } from 'react';
import { api, getJson, must } from '../api/client';
import { ACTIONS, type DecisionPage, type DecisionSummary, type Obj, type TradingSession } from '../api/types';
import { LoadState, Section, StatusBadge } from '../components/Bits';
import { Table } from '../components/Table';
import { fmtNum, fmtPct, fmtTime } from '../lib/format';
import { navigate, useLocation } from '../lib/router';
import { breakers, correlations, pnl, positions } from '../lib/trading';
import { useLoad } from '../lib/useLoad';

export default function Trading() {
  const { query } = useLocation();
  const selected = query.get('session');
  const sessions = useLoad(async () => must(await api.GET('/v1/trading-sessions', { params: { query: { limit: 100 } } })) as TradingSession[], [], {
    intervalMs: 5000,
  });
  const current = (sessions.data ?? []).find((s) => s.id === selected);
  return (
    <>
      <h1>Trading</h1>
      <Section title="Sessions">
        <LoadState state={sessions}>
          {(rows) => (
            <Table
              caption="Paper trading sessions"
              testId="sessions-table"
              rows={rows}
              rowKey={(s) => s.id}
              columns={[
                {
                  key: 'id',
                  header: 'Session',
                  render: (s) => (
                    <button type="button" className="link" aria-pressed={s.id === selected} onClick={() => navigate(`/trading?session=${encodeURIComponent(s.id)}`, true)}>
                      {s.id}
                    </button>
                  ),
                },
                { key: 'model', header: 'Model' },
                { key: 'account', header: 'Account' },
                { key: 'status', header: 'Status', render: (s) => <StatusBadge status={s.alive ? s.status : `${s.status}`} /> },
                { key: 'equity', header: 'Equity', numeric: true, value: (s) => pnl(s).equity },
                { key: 'pnl', header: 'P&L', numeric: true, value: (s) => pnl(s).pnl },
                { key: 'alerts', header: 'Breakers open', numeric: true, value: (s) => breakers(s).filter((b) => b.state !== 'closed').length },
                { key: 'started_ms', header: 'Started', render: (s) => fmtTime(s.started_ms) },
              ]}
              empty="No trading session yet (start one with tradelab trade or POST /v1/trading-sessions)."
            />
          )}
        </LoadState>
      </Section>
      {current ? <SessionDetail session={current} /> : null}
    </>
  );
}

function SessionDetail({ session }: { session: TradingSession }) {
  const p = pnl(session);
  const corr = correlations(session);
  const pos = positions(session);
  return (
    <>
      <Section title={`Session ${session.id}`}>
        <dl className="facts">
          <dt>Status</dt>
          <dd>
            <StatusBadge status={session.status} /> {session.alive ? '(alive)' : ''} {session.reason ?? ''}
          </dd>
          <dt>Equity</dt>
          <dd>{fmtNum(p.equity, 2)}</dd>
          <dt>Cash</dt>
          <dd>{fmtNum(p.cash, 2)}</dd>
          <dt>P&amp;L</dt>
          <dd className={(p.pnl ?? 0) >= 0 ? 'gain' : 'loss'}>{fmtNum(p.pnl, 2)}</dd>
          <dt>Drawdown</dt>
          <dd>{p.drawdown === null ? '—' : fmtPct(p.drawdown * 100)}</dd>
        </dl>
        <div className="grid">
          <Table
            caption="Positions"
            rows={pos}
            rowKey={(x) => x.symbol}
            columns={[
              { key: 'symbol', header: 'Instrument' },
              { key: 'units', header: 'Units', numeric: true },
              { key: 'weight', header: 'Weight', numeric: true },
              { key: 'contribution', header: 'Vol. contribution', numeric: true },
            ]}
            empty="No checkpoint yet."
          />
          <Table
            caption="Breakers"
            rows={breakers(session)}
            rowKey={(b) => b.kind}
            columns={[
              { key: 'kind', header: 'Breaker', value: (b) => b.kind.replace(/_/g, ' ') },
              { key: 'state', header: 'State', render: (b) => <StatusBadge status={b.state} /> },
            ]}
            empty="No breaker state recorded."
          />
          {corr ? (
            <Table
              caption={`Correlations of returns (last ${corr.returns} bars)`}
              testId="correlations-table"
              rows={corr.matrix.map((row, i) => ({ symbol: corr.symbols[i], row }))}
              rowKey={(r) => r.symbol}
              columns={[
                { key: 'symbol', header: 'Instrument', sortable: false },
                ...corr.symbols.map((name, j) => ({
                  key: `c${j}`,
                  header: name,
                  numeric: true,
                  sortable: false,
                  value: (r: { row: (number | null)[] }) => r.row[j],
                  render: (r: { row: (number | null)[] }) => (r.row[j] === null ? '—' : fmtNum(r.row[j], 2)),
                })),
              ]}
            />
          ) : null}
        </div>
      </Section>
      <Decisions session={session.id} />
    </>
  );
}

function Decisions({ session }: { session: string }) {
  const page = useLoad(async () => must(await api.GET('/v1/decisions', { params: { query: { session, limit: 50 } } })) as DecisionPage, [session], {
    intervalMs: 10000,
  });
  const [open, setOpen] = useState<string | null>(null);
  return (
    <Section title="Latest decisions">
      <LoadState state={page}>
        {(d) => (
          <Table
            caption="Decisions of this session, newest first"
            testId="decisions-table"
            rows={d.decisions}
            rowKey={(x) => x.id}
            columns={[
              { key: 'at_ms', header: 'At', render: (x) => fmtTime(x.at_ms) },
              { key: 'instrument', header: 'Instrument' },
              { key: 'action', header: 'Action' },
              { key: 'quantity', header: 'Quantity', numeric: true },
              { key: 'p', header: 'P(action)', numeric: true, value: (x: DecisionSummary) => x.probabilities[ACTIONS.indexOf(x.action as (typeof ACTIONS)[number])] },
              {
                key: 'why',
                header: 'Explanation',
                sortable: false,
                render: (x) => (
                  <button type="button" aria-expanded={open === x.id} onClick={() => setOpen(open === x.id ? null : x.id)}>
                    {open === x.id ? 'Hide' : 'Explain'}
                    <span className="sr-only"> decision {x.id}</span>
                  </button>
                ),
              },
            ]}
            empty="No decisions recorded for this session."
          />
        )}
      </LoadState>
      {open ? <Explanation id={open} /> : null}
    </Section>
  );
}

/** The top attributions by size, largest first. */
export function topAttributions(explanation: Obj | null, n = 8): { name: string; value: number }[] {
  const by = (explanation?.attributions as { by_feature?: { name: string; value: number }[] } | null | undefined)?.by_feature;
  if (!Array.isArray(by)) return [];
  return by
    .filter((f) => Number.isFinite(f.value))
    .slice()
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value))
    .slice(0, n);
}

export function Explanation({ id }: { id: string }) {
  const doc = useLoad(() => getJson<Obj>(`/v1/decisions/${encodeURIComponent(id)}`), [id]);
  return (
    <div className="explanation" data-testid="explanation">
      <h3>Decision {id}</h3>
      <LoadState state={doc}>
        {(d) => {
          const e = (d.explanation ?? null) as Obj | null;
          if (!e) return <p className="muted">Not explained yet: a forensics worker has not reached this decision.</p>;
          const top = topAttributions(e);
          const max = Math.max(1e-12, ...top.map((t) => Math.abs(t.value)));
          return (
            <>
              <p>{String(e.text ?? '')}</p>
              {top.length ? (
                <ul className="bars" aria-label="Top feature attributions">
                  {top.map((t) => (
                    <li key={t.name}>
                      <span className="bar-label">{t.name}</span>
                      <span className="bar-track" aria-hidden="true">
                        <span className={`bar-fill ${t.value >= 0 ? 'pos' : 'neg'}`} style={{ width: `${(Math.abs(t.value) / max) * 100}%` }} />
                      </span>
                      <span className="bar-value">{fmtNum(t.value)}</span>
                    </li>
                  ))}
                </ul>
              ) : null}
            </>
          );
        }}
      </LoadState>
    </div>
  );
}
