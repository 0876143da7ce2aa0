import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BacktestForm, backtestBody, evaluateBody, modelChoices } from '../components/BacktestForm';
import type { Model } from './types';
import { ProblemMessage } from '../components/ProblemMessage';
import { fieldOfProblem, toProblem } from './problem';

const problemResponse = (status: number, detail: string) =>
  new Response(JSON.stringify({ type: 'about:blank', title: 'Unprocessable Entity', status, detail }), {
    status,
    headers: { 'Content-Type': 'application/problem+json' },
  });

describe('problem documents', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('reads RFC 7807 and OAuth error bodies alike', () => {
    expect(toProblem({ title: 'Forbidden', status: 403, detail: 'needs train' }, 403)).toMatchObject({ title: 'Forbidden', detail: 'needs train' });
    expect(toProblem({ error: 'invalid_grant', error_description: 'unknown refresh token' }, 400)).toMatchObject({
      title: 'invalid_grant',
      status: 400,
      detail: 'unknown refresh token',
    });
  });

  it('finds the field a detail names first', () => {
    const fields = { strategy: ['strategy'], symbols: ['symbols', 'symbol'], settings: ['setting'] };
    expect(fieldOfProblem('unknown strategy `x`; choose one of: buy_and_hold', fields)).toBe('strategy');
    expect(fieldOfProblem('symbol `../x` is not a plain name (letters, digits)', fields)).toBe('symbols');
    expect(fieldOfProblem('a backtest needs at least one symbol', fields)).toBe('symbols');
    expect(fieldOfProblem('setting `data.raw_dir` is fixed by the server', fields)).toBe('settings');
    expect(fieldOfProblem('the database failed', fields)).toBeNull();
  });

  it('renders title and detail', () => {
    render(<ProblemMessage problem={{ title: 'Forbidden', status: 403, detail: 'cancelling a train job needs the `train` scope' }} />);
    expect(screen.getByRole('alert')).toHaveTextContent('Forbidden: cancelling a train job needs the `train` scope');
  });

  it('shows a refusal next to the field it names, tied with aria-describedby', async () => {
    const fetch = vi.fn(async () => problemResponse(422, 'unknown strategy `nope`; choose one of: buy_and_hold, sma_crossover'));
    vi.stubGlobal('fetch', fetch);
    const user = userEvent.setup();
    const onStarted = vi.fn();
    render(<BacktestForm onStarted={onStarted} defaultSymbols="orcl-1995-2014" />);
    await user.click(screen.getByRole('button', { name: 'Start backtest' }));
    const strategy = screen.getByLabelText('Strategy');
    await waitFor(() => expect(strategy).toHaveAttribute('aria-invalid', 'true'));
    const err = document.getElementById(strategy.getAttribute('aria-describedby')!.split(' ')[0])!;
    expect(err).toHaveTextContent('unknown strategy `nope`');
    expect(screen.getByLabelText('Symbols')).not.toHaveAttribute('aria-invalid');
    expect(onStarted).not.toHaveBeenCalled();
    const req = (fetch.mock.calls[0] as unknown[])[0] as Request;
    expect(req.method).toBe('POST');
    expect(new URL(req.url).pathname).toBe('/v1/backtests');
    expect(await req.json()).toEqual({ strategy: 'sma_crossover', symbols: ['orcl-1995-2014'], settings: [] });
  });

  it('shows a problem naming no field above the button', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => problemResponse(500, 'queueing the job failed on the server')));
    const user = userEvent.setup();
    render(<BacktestForm onStarted={() => {}} defaultSymbols="orcl" />);
    await user.click(screen.getByRole('button', { name: 'Start backtest' }));
    expect(await screen.findByTestId('problem')).toHaveTextContent('queueing the job failed');
  });

  it('evaluates a registered model: production first, posted to /v1/evaluations with its costs as settings', async () => {
    const model = (name: string, version: number, stage: string, created_ms: number): Model =>
      ({ name, version, stage, created_ms, location: `/models/${name}/${version}`, checksum: 'x', framework: 'f', metadata: { model: 'logreg' }, run_id: null }) as unknown as Model;
    const models = [model('logreg', 1, 'none', 1), model('logreg', 2, 'production', 2), model('ppo', 1, 'none', 3)];
    const fetch = vi.fn(async (req: Request) =>
      new URL(req.url).pathname === '/v1/models'
        ? new Response(JSON.stringify(models), { status: 200, headers: { 'Content-Type': 'application/json' } })
        : new Response(JSON.stringify({ id: 'job1', kind: 'evaluate', status: 'queued', payload: {}, progress: {}, attempts: 0, created_ms: 0, updated_ms: 0 }), {
            status: 202,
            headers: { 'Content-Type': 'application/json' },
          }),
    );
    vi.stubGlobal('fetch', fetch);
    const user = userEvent.setup();
    const onStarted = vi.fn();
    render(<BacktestForm onStarted={onStarted} />);
    await user.selectOptions(screen.getByLabelText('What to test'), 'model');
    const choice = screen.getByLabelText('Model');
    await waitFor(() => expect(choice).toHaveValue('logreg@2'));
    expect(screen.queryByLabelText('Strategy')).toBeNull();
    await user.type(screen.getByLabelText('Folds'), '3');
    await user.type(screen.getByLabelText('Commission (bps of notional)'), '10');
    await user.click(screen.getByRole('button', { name: 'Start evaluation' }));
    await waitFor(() => expect(onStarted).toHaveBeenCalled());
    const post = fetch.mock.calls.map((c) => (c as unknown[])[0] as Request).find((r) => r.method === 'POST')!;
    expect(new URL(post.url).pathname).toBe('/v1/evaluations');
    expect(await post.json()).toEqual({ model: 'logreg@2', symbols: [], folds: 3, settings: ['backtest.costs.percent=0.001'] });
    expect(modelChoices(models).map((c) => c.value)).toEqual(['logreg@2', 'ppo@1', 'logreg@1']);
    expect(modelChoices([{ ...models[0], location: '' }])).toEqual([]);
  });

  it("builds an evaluation's body, leaving empty fields to the server", () => {
    const blank = { fill: '', commissionBps: '', slippageBps: '', maxDrawdown: '', maxAssetFraction: '', overrides: '' };
    expect(evaluateBody({ ...blank, model: 'm@production', symbols: '', split: '', folds: '', trials: '', trialSharpeStd: '' })).toEqual({
      model: 'm@production',
      symbols: [],
      settings: [],
    });
    expect(
      evaluateBody({ ...blank, fill: 'signal_close', model: 'm@1', symbols: 'a,b', split: 'validation', folds: '2', trials: '12', trialSharpeStd: '0.4' }),
    ).toEqual({ model: 'm@1', symbols: ['a', 'b'], split: 'validation', folds: 2, trials: 12, trial_sharpe_std: 0.4, settings: ['backtest.fill=signal_close'] });
  });

  it('turns cost and risk fields into settings overrides', () => {
    expect(
      backtestBody({
        strategy: 'momentum',
        symbols: 'a, b  c',
        fill: 'signal_close',
        commissionBps: '5',
        slippageBps: '',
        maxDrawdown: '0.2',
        maxAssetFraction: '',
        overrides: '# note\nstrategies.momentum.lookback=20\n',
      }),
    ).toEqual({
      strategy: 'momentum',
      symbols: ['a', 'b', 'c'],
      fill: 'signal_close',
      settings: ['backtest.costs.percent=0.0005', 'risk.max_drawdown=0.2', 'strategies.momentum.lookback=20'],
    });
  });
});
