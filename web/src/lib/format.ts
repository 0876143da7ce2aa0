export function fmtTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export function fmtNum(v: unknown, digits = 4): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return v === null || v === undefined ? '—' : String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e12) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function fmtPct(v: unknown, digits = 2): string {
  return typeof v === 'number' && Number.isFinite(v) ? `${v.toFixed(digits)} %` : '—';
}

/** The report's `YYYY-MM-DDTHH:MM:SS` (UTC) as seconds since the epoch. */
export function reportTimeSec(t: string): number {
  return Math.floor(Date.parse(t.endsWith('Z') ? t : `${t}Z`) / 1000);
}

/** How far a job is, 0..1, from whatever its progress carries. */
export function jobFraction(progress: Record<string, unknown> | null | undefined): number | null {
  if (!progress) return null;
  const n = (k: string) => (typeof progress[k] === 'number' ? (progress[k] as number) : null);
  const pct = n('percent');
  if (pct !== null) return Math.min(1, Math.max(0, pct / 100));
  const done = n('done') ?? n('step');
  const total = n('total') ?? n('total_steps');
  if (done !== null && total) return Math.min(1, Math.max(0, done / total));
  return null;
}

export const TERMINAL_JOB = new Set(['finished', 'failed', 'cancelled']);

/**
 * A finished parameter search's result in one line: the best combination,
 * its score, and the overfitting figures (deflated Sharpe, PBO) where the
 * search computed them; null for a result that is not a search's.
 */
export function optimizationSummary(result: Record<string, unknown> | null | undefined): string | null {
  const best = result?.best;
  if (!best || typeof best !== 'object' || Array.isArray(best)) return null;
  const params = Object.entries(best as Record<string, unknown>)
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(', ');
  const parts = [`${params}: ${String(result?.metric ?? 'score')} ${fmtNum(result?.score)}`];
  if (typeof result?.combinations === 'number') parts[0] += ` (best of ${fmtNum(result.combinations)})`;
  if (typeof result?.deflated_sharpe === 'number') parts.push(`deflated Sharpe ${fmtNum(result.deflated_sharpe, 2)}`);
  if (typeof result?.pbo === 'number') parts.push(`PBO ${fmtNum(result.pbo, 2)}`);
  return parts.join('; ');
}

/**
 * The call at the end of an evaluation's verdict ("not distinguishable from
 * buy-and-hold (p=0.260)", "flat: no evidence of skill"): what follows the
 * figures; the whole verdict when it has no figures.
 */
export function verdictCall(verdict: unknown): string | null {
  if (typeof verdict !== 'string' || !verdict) return null;
  const figures = verdict.indexOf('% vs ');
  const cut = figures >= 0 ? verdict.indexOf(': ', figures) : -1;
  return cut >= 0 ? verdict.slice(cut + 2) : verdict;
}

