import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BacktestForm, backtestBody } from '../components/BacktestForm';
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
