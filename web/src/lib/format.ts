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
