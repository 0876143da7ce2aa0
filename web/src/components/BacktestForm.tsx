// The form that starts a backtest job. A refusal from the server (422 with
// a problem document) is shown under the field its detail names.

import { api, must } from '../api/client';
import { STRATEGIES, type BacktestJob, type Job } from '../api/types';
import { splitLines, splitList } from '../lib/forms';
import { useJobForm } from '../lib/useJobForm';
import { Field } from './Field';
import { ProblemMessage } from './ProblemMessage';

export const BACKTEST_FIELDS = {
  strategy: ['strategy'],
  symbols: ['symbols', 'symbol'],
  fill: ['fill'],
  settings: ['setting', 'settings'],
} as const;

/** The body to post, from what was typed. Risk and cost fields become settings overrides. */
export function backtestBody(f: {
  strategy: string;
  symbols: string;
  fill: string;
  commissionBps: string;
  slippageBps: string;
  maxDrawdown: string;
  maxAssetFraction: string;
  overrides: string;
}): BacktestJob {
  const settings: string[] = [];
  const num = (v: string) => v.trim() !== '' && Number.isFinite(Number(v));
  if (num(f.commissionBps)) settings.push(`backtest.costs.percent=${Number(f.commissionBps) / 10_000}`);
  if (num(f.slippageBps)) settings.push('backtest.slippage.model=fixed_bps', `backtest.slippage.bps=${Number(f.slippageBps)}`);
  if (num(f.maxDrawdown)) settings.push(`risk.max_drawdown=${Number(f.maxDrawdown)}`);
  if (num(f.maxAssetFraction)) settings.push(`risk.max_asset_fraction=${Number(f.maxAssetFraction)}`);
  settings.push(...splitLines(f.overrides));
  return {
    strategy: f.strategy,
    symbols: splitList(f.symbols),
    ...(f.fill ? { fill: f.fill } : {}),
    settings,
  };
}

export function BacktestForm({ onStarted, defaultSymbols = '' }: { onStarted: (job: Job) => void; defaultSymbols?: string }) {
  // Cost and risk fields are sent as settings: their refusals land there.
  const { form, set, submit, busy, problem, field, errorFor } = useJobForm(
    {
      strategy: 'sma_crossover',
      symbols: defaultSymbols,
      fill: '',
      commissionBps: '',
      slippageBps: '',
      maxDrawdown: '',
      maxAssetFraction: '',
      overrides: '',
    },
    BACKTEST_FIELDS,
    async (f) => must(await api.POST('/v1/backtests', { body: backtestBody(f) })) as Job,
    onStarted,
  );

  return (
    <form onSubmit={submit} aria-label="Start a backtest" data-testid="backtest-form" noValidate>
      <div className="form-grid">
        <Field id="bt-strategy" label="Strategy" error={errorFor('strategy')}>
          {(a) => (
            <select {...a} value={form.strategy} onChange={set('strategy')}>
              {STRATEGIES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          )}
        </Field>
        <Field id="bt-symbols" label="Symbols" hint="Instruments in the data folder, separated by commas" error={errorFor('symbols')}>
          {(a) => <input {...a} value={form.symbols} onChange={set('symbols')} placeholder="orcl-1995-2014" autoComplete="off" />}
        </Field>
        <Field id="bt-fill" label="Fill policy" error={errorFor('fill')}>
          {(a) => (
            <select {...a} value={form.fill} onChange={set('fill')}>
              <option value="">Server default</option>
              <option value="next_open">next_open (fill at the next bar's open)</option>
              <option value="signal_close">signal_close (fill at the signal bar's close)</option>
            </select>
          )}
        </Field>
        <Field id="bt-commission" label="Commission (bps of notional)" hint="Sets backtest.costs.percent">
          {(a) => <input {...a} type="number" min="0" step="any" inputMode="decimal" value={form.commissionBps} onChange={set('commissionBps')} />}
        </Field>
        <Field id="bt-slippage" label="Slippage (bps)" hint="Sets backtest.slippage to fixed_bps">
          {(a) => <input {...a} type="number" min="0" step="any" inputMode="decimal" value={form.slippageBps} onChange={set('slippageBps')} />}
        </Field>
        <Field id="bt-maxdd" label="Max drawdown before halting (fraction)" hint="risk.max_drawdown, e.g. 0.2">
          {(a) => <input {...a} type="number" min="0" max="1" step="any" inputMode="decimal" value={form.maxDrawdown} onChange={set('maxDrawdown')} />}
        </Field>
        <Field id="bt-maxasset" label="Max share of equity per instrument" hint="risk.max_asset_fraction, e.g. 0.25">
          {(a) => <input {...a} type="number" min="0" max="1" step="any" inputMode="decimal" value={form.maxAssetFraction} onChange={set('maxAssetFraction')} />}
        </Field>
        <Field id="bt-settings" label="Other settings overrides" hint="One key.path=value per line, e.g. strategies.sma_crossover.fast=5" error={errorFor('settings')}>
          {(a) => <textarea {...a} rows={3} value={form.overrides} onChange={set('overrides')} spellCheck={false} />}
        </Field>
      </div>
      {problem && !field ? <ProblemMessage problem={problem} /> : null}
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Starting…' : 'Start backtest'}
      </button>
    </form>
  );
}
