// The form that starts a backtest of a rule strategy or the evaluation of
// a registered model (out of sample, beside the baselines). A refusal from
// the server (422 with a problem document) is shown under the field its
// detail names.

import { useEffect } from 'react';
import { api, must } from '../api/client';
import { STRATEGIES, type BacktestJob, type EvaluateJob, type Job, type Model } from '../api/types';
import { splitLines, splitList } from '../lib/forms';
import { useJobForm } from '../lib/useJobForm';
import { useLoad } from '../lib/useLoad';
import { Field } from './Field';
import { ProblemMessage } from './ProblemMessage';

export const BACKTEST_FIELDS = {
  strategy: ['strategy'],
  model: ['model'],
  symbols: ['symbols', 'symbol'],
  split: ['split'],
  folds: ['folds'],
  trials: ['trials', 'trial_sharpe_std'],
  fill: ['fill'],
  settings: ['setting', 'settings'],
} as const;

type CostFields = {
  fill: string;
  commissionBps: string;
  slippageBps: string;
  maxDrawdown: string;
  maxAssetFraction: string;
  overrides: string;
};

const num = (v: string) => v.trim() !== '' && Number.isFinite(Number(v));

/** Costs and risk limits as settings overrides (the fill too, when `fillAsSetting`). */
function costSettings(f: CostFields, fillAsSetting: boolean): string[] {
  const settings: string[] = [];
  if (fillAsSetting && f.fill) settings.push(`backtest.fill=${f.fill}`);
  if (num(f.commissionBps)) settings.push(`backtest.costs.percent=${Number(f.commissionBps) / 10_000}`);
  if (num(f.slippageBps)) settings.push('backtest.slippage.model=fixed_bps', `backtest.slippage.bps=${Number(f.slippageBps)}`);
  if (num(f.maxDrawdown)) settings.push(`risk.max_drawdown=${Number(f.maxDrawdown)}`);
  if (num(f.maxAssetFraction)) settings.push(`risk.max_asset_fraction=${Number(f.maxAssetFraction)}`);
  settings.push(...splitLines(f.overrides));
  return settings;
}

/** The body to post, from what was typed. Risk and cost fields become settings overrides. */
export function backtestBody(f: CostFields & { strategy: string; symbols: string }): BacktestJob {
  return {
    strategy: f.strategy,
    symbols: splitList(f.symbols),
    ...(f.fill ? { fill: f.fill } : {}),
    settings: costSettings(f, false),
  };
}

/** The body of a model's evaluation: empty fields are left to the server's defaults. */
export function evaluateBody(f: CostFields & { model: string; symbols: string; split: string; folds: string; trials: string; trialSharpeStd: string }): EvaluateJob {
  return {
    model: f.model,
    symbols: splitList(f.symbols),
    ...(f.split ? { split: f.split } : {}),
    ...(num(f.folds) ? { folds: Number(f.folds) } : {}),
    ...(num(f.trials) ? { trials: Number(f.trials) } : {}),
    ...(num(f.trialSharpeStd) ? { trial_sharpe_std: Number(f.trialSharpeStd) } : {}),
    settings: costSettings(f, true),
  };
}

/** A registered version as the model choice names it: production first, then newest. */
export function modelChoices(models: Model[]): { value: string; label: string }[] {
  const rank = (m: Model) => (m.stage === 'production' ? 0 : m.stage === 'staging' ? 1 : 2);
  return [...models]
    .filter((m) => m.location !== '')
    .sort((a, b) => rank(a) - rank(b) || b.created_ms - a.created_ms)
    .map((m) => ({
      value: `${m.name}@${m.version}`,
      label: `${m.name} v${m.version} (${m.stage}${typeof m.metadata?.model === 'string' ? `, ${m.metadata.model}` : ''})`,
    }));
}

export function BacktestForm({ onStarted, defaultSymbols = '' }: { onStarted: (job: Job) => void; defaultSymbols?: string }) {
  // Cost and risk fields are sent as settings: their refusals land there.
  const { form, set, submit, busy, problem, field, errorFor } = useJobForm(
    {
      subject: 'strategy',
      strategy: 'sma_crossover',
      model: '',
      symbols: defaultSymbols,
      split: '',
      folds: '',
      trials: '',
      trialSharpeStd: '',
      fill: '',
      commissionBps: '',
      slippageBps: '',
      maxDrawdown: '',
      maxAssetFraction: '',
      overrides: '',
    },
    BACKTEST_FIELDS,
    async (f) =>
      f.subject === 'model'
        ? (must(await api.POST('/v1/evaluations', { body: evaluateBody(f) })) as Job)
        : (must(await api.POST('/v1/backtests', { body: backtestBody(f) })) as Job),
    onStarted,
  );
  const evaluating = form.subject === 'model';
  const models = useLoad(async () => (evaluating ? (must(await api.GET('/v1/models')) as Model[]) : []), [evaluating]);
  const choices = modelChoices(models.data ?? []);
  const first = choices[0]?.value ?? '';
  // The first choice (production first) until the user picks one.
  useEffect(() => {
    if (evaluating && first && !choices.some((c) => c.value === form.model)) set('model')({ target: { value: first } });
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [evaluating, first]);

  return (
    <form onSubmit={submit} aria-label="Start a backtest or an evaluation" data-testid="backtest-form" noValidate>
      <div className="form-grid">
        <Field id="bt-subject" label="What to test" hint="A rule strategy over the whole file, or a trained model out of sample">
          {(a) => (
            <select {...a} value={form.subject} onChange={set('subject')}>
              <option value="strategy">A rule strategy</option>
              <option value="model">A registered model (evaluation)</option>
            </select>
          )}
        </Field>
        {evaluating ? (
          <Field id="bt-model" label="Model" hint={models.problem ? `The registry could not be read: ${models.problem.detail ?? models.problem.title}` : 'Registered versions, production first'} error={errorFor('model')}>
            {(a) => (
              <select {...a} value={form.model} onChange={set('model')} disabled={!choices.length}>
                {choices.length ? null : <option value="">{models.loading ? 'Loading…' : 'No model registered: train one on the Jobs page'}</option>}
                {choices.map((c) => (
                  <option key={c.value} value={c.value}>
                    {c.label}
                  </option>
                ))}
              </select>
            )}
          </Field>
        ) : (
          <Field id="bt-strategy" label="Strategy" error={errorFor('strategy')}>
            {(a) => (
              <select {...a} value={form.strategy} onChange={set('strategy')}>
                {STRATEGIES.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            )}
          </Field>
        )}
        <Field
          id="bt-symbols"
          label="Symbols"
          hint={evaluating ? 'Leave empty for the instruments the model was trained on' : 'Instruments in the data folder, separated by commas'}
          error={errorFor('symbols')}
        >
          {(a) => <input {...a} value={form.symbols} onChange={set('symbols')} placeholder={evaluating ? 'as trained' : 'orcl-1995-2014'} autoComplete="off" />}
        </Field>
        {evaluating ? (
          <>
            <Field id="bt-split" label="Split" hint="Never the train split: the model learnt from it" error={errorFor('split')}>
              {(a) => (
                <select {...a} value={form.split} onChange={set('split')}>
                  <option value="">test (default)</option>
                  <option value="validation">validation</option>
                </select>
              )}
            </Field>
            <Field id="bt-folds" label="Folds" hint="Consecutive parts of the split, each from a fresh account (1 to 20)" error={errorFor('folds')}>
              {(a) => <input {...a} type="number" min="1" max="20" step="1" inputMode="numeric" value={form.folds} onChange={set('folds')} placeholder="1" />}
            </Field>
            <Field id="bt-trials" label="Trials behind this model" hint="Models or settings tried to find it: the deflated Sharpe ratio discounts their luck" error={errorFor('trials')}>
              {(a) => <input {...a} type="number" min="1" step="1" inputMode="numeric" value={form.trials} onChange={set('trials')} placeholder="1" />}
            </Field>
            <Field id="bt-trial-std" label="Spread of those trials' Sharpe ratios" hint="Annualised standard deviation; needed with more than one trial">
              {(a) => <input {...a} type="number" min="0" step="any" inputMode="decimal" value={form.trialSharpeStd} onChange={set('trialSharpeStd')} />}
            </Field>
          </>
        ) : null}
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
        {busy ? 'Starting…' : evaluating ? 'Start evaluation' : 'Start backtest'}
      </button>
    </form>
  );
}
