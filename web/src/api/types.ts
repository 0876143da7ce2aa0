// Domain types, from the generated schema. Documents the server types as a
// bare `Object` (payloads, metadata, checkpoints) are widened here to
// plain records so pages can read into them.

import type { components } from './schema';

type S = components['schemas'];
export type Obj = Record<string, unknown>;
type Widen<T, K extends keyof T> = Omit<T, K> & { [P in K]: undefined extends T[P] ? Obj | null | undefined : Obj };

export type Problem = S['Problem'];
export type Me = S['Me'];
export type User = S['User'];
export type Client = S['Client'];
export type AddedUser = S['AddedUser'];
export type Dataset = S['Dataset'];
export type Candle = S['Candle'];
export type Bars = S['Bars'];
export type Validation = S['Validation'];
export type Regimes = S['Regimes'];
export type Run = Widen<S['Run'], 'params' | 'tags'>;
export type Point = S['Point'];
export type Model = Widen<S['Model'], 'metadata'>;
export type BacktestSummary = S['BacktestSummary'];
export type BacktestJob = S['BacktestJob'];
export type EvaluateJob = S['EvaluateJob'];
export type TrainJob = S['TrainJob'];
export type Job = Widen<S['Job'], 'payload' | 'progress' | 'result'>;
export type TradingSession = Widen<S['TradingSession'], 'spec' | 'checkpoint'>;
export type DecisionSummary = S['DecisionSummary'];
export type JobLogPage = S['JobLogPage'];
export type LogLine = S['LogLine'];
export type DecisionPage = S['DecisionPage'];

/** A round-trip trade of a backtest report (sim::report::TradeRow). */
export interface TradeRow {
  instrument: string;
  direction: string;
  entry_time: string;
  exit_time: string;
  quantity: number;
  entry_price: number;
  exit_price: number;
  pnl: number;
  fees: number;
  return_pct: number;
}

/** One point of a backtest's equity curve (sim::report::EquityPoint). */
export interface EquityPoint {
  time: string;
  equity: number;
  drawdown: number;
}

export const ACTIONS = ['BUY_LONG', 'SELL_SHORT', 'CLOSE_LONG', 'CLOSE_SHORT', 'HOLD'] as const;
export const BREAKERS = ['stale_feed', 'data_gap', 'bad_bar', 'model_errors', 'latency', 'drawdown', 'broker'] as const;
export const STRATEGIES = [
  'buy_and_hold',
  'sma_crossover',
  'rsi_mean_reversion',
  'momentum',
  'buy_and_hold_vol_target',
  'momentum_vol_target',
] as const;
export const AGENTS = ['logreg', 'gbt', 'ppo-mlp', 'ppo-lstm', 'ppo-transformer', 'hrm', 'moe'] as const;
