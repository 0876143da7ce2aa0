import type { ReactNode } from 'react';
import { ProblemMessage } from './ProblemMessage';
import type { Loaded } from '../lib/useLoad';

export function ProgressBar({ fraction, label }: { fraction: number | null; label: string }) {
  if (fraction === null) return <span className="muted">{label}: —</span>;
  const pct = Math.round(fraction * 100);
  return (
    <div className="progress-row">
      <progress max={100} value={pct} aria-label={label} data-testid="job-progress" />
      <span className="muted">{pct} %</span>
    </div>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status.replace(/[^a-z_]/gi, '')}`}>{status.replace(/_/g, ' ')}</span>;
}

export function JsonView({ value, label }: { value: unknown; label: string }) {
  return (
    <pre className="json" tabIndex={0} role="region" aria-label={label}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function Section({ title, children, actions }: { title: string; children: ReactNode; actions?: ReactNode }) {
  return (
    <section className="card">
      <div className="card-head">
        <h2>{title}</h2>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A loading state, the problem, or the content. */
export function LoadState<T>({ state, children }: { state: Loaded<T>; children: (data: T) => ReactNode }) {
  if (state.problem && state.data === undefined) return <ProblemMessage problem={state.problem} />;
  if (state.data === undefined)
    return (
      <p className="muted" aria-live="polite">
        Loading…
      </p>
    );
  return (
    <>
      {state.problem ? <ProblemMessage problem={state.problem} /> : null}
      {children(state.data)}
    </>
  );
}
