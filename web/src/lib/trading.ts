// Reading a trading session's checkpoint (trade::session::Checkpoint): the
// server passes it through as JSON, so the shapes are checked here.

import type { TradingSession } from '../api/types';
import { BREAKERS } from '../api/types';

export interface BreakerView {
  kind: string;
  state: string; // closed | open | half_open
}

export function breakers(s: TradingSession): BreakerView[] {
  const states = (s.checkpoint as { breakers?: { states?: unknown } } | null | undefined)?.breakers?.states;
  if (!Array.isArray(states)) return [];
  return states.map((st, i) => ({
    kind: BREAKERS[i] ?? `breaker ${i + 1}`,
    state: typeof st === 'string' ? st : String((st as { state?: unknown })?.state ?? 'unknown'),
  }));
}

/** Breakers not closed: what the Overview raises as alerts. */
export function breakerAlerts(s: TradingSession): BreakerView[] {
  return breakers(s).filter((b) => b.state !== 'closed');
}

export interface PositionView {
  symbol: string;
  units: number;
  weight: number | null;
  contribution: number | null;
}

export function positions(s: TradingSession): PositionView[] {
  const cp = (s.checkpoint ?? {}) as Record<string, unknown>;
  const units = Array.isArray(cp.positions) ? (cp.positions as number[]) : [];
  const symbols = Array.isArray(cp.symbols) ? (cp.symbols as string[]) : [];
  const risk = (cp.risk ?? null) as { weights?: number[]; contributions?: number[] } | null;
  return units.map((u, i) => ({
    symbol: symbols[i] ?? `#${i + 1}`,
    units: u,
    weight: risk?.weights?.[i] ?? null,
    contribution: risk?.contributions?.[i] ?? null,
  }));
}

export function pnl(s: TradingSession): { equity: number | null; pnl: number | null; cash: number | null; drawdown: number | null } {
  const cp = (s.checkpoint ?? {}) as Record<string, unknown>;
  const num = (k: string) => (typeof cp[k] === 'number' ? (cp[k] as number) : null);
  const equity = num('equity');
  const initial = num('initial_equity');
  const peak = num('equity_peak');
  return {
    equity,
    cash: num('cash'),
    pnl: equity !== null && initial ? equity - initial : null,
    drawdown: equity !== null && peak ? equity / peak - 1 : null,
  };
}

/**
 * The correlations of the instruments' returns the session last computed
 * (`checkpoint.risk`), with the number of returns behind them; `null`
 * before there are any. NaN (an instrument that did not move) arrives as
 * null and stays null.
 */
export function correlations(s: TradingSession): { symbols: string[]; matrix: (number | null)[][]; returns: number } | null {
  const cp = (s.checkpoint ?? {}) as Record<string, unknown>;
  const risk = cp.risk as { correlation?: unknown; returns?: unknown } | null | undefined;
  if (!risk || !Array.isArray(risk.correlation) || risk.correlation.length === 0) return null;
  const symbols = positions(s).map((p) => p.symbol);
  const matrix = (risk.correlation as unknown[][]).map((row) => row.map((v) => (typeof v === 'number' ? v : null)));
  return { symbols: matrix.map((_, i) => symbols[i] ?? `#${i + 1}`), matrix, returns: Number(risk.returns ?? 0) };
}
