import { render, screen, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../App';
import type { Me } from '../api/types';
import { StaticAuth } from './AuthProvider';

const viewer: Me = { username: 'vera', role: 'viewer', scopes: ['data:read', 'models:read'] };
const admin: Me = {
  username: 'admin',
  role: 'admin',
  scopes: ['data:read', 'models:read', 'models:write', 'train', 'backtest', 'trade', 'admin'],
};

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
}

// Just enough of the API for the pages to render.
function fakeApi(input: Request | string): Response {
  const url = new URL(typeof input === 'string' ? input : input.url, 'http://localhost');
  switch (url.pathname) {
    case '/v1/jobs':
      return json([
        { id: 'job1', kind: 'train', status: 'running', payload: {}, progress: { percent: 40 }, result: null, attempts: 1, created_ms: 0, updated_ms: 0 },
      ]);
    case '/v1/models':
      return json([{ name: 'logreg', version: 1, stage: 'none', checksum: 'ab', framework: 'x', location: '/m', created_ms: 0, metadata: {} }]);
    default:
      return json([]);
  }
}

function at(path: string, me: Me) {
  history.replaceState(null, '', path);
  return render(
    <StaticAuth value={{ me }}>
      <App />
    </StaticAuth>,
  );
}

describe('role-based hiding', () => {
  beforeEach(() => {
    vi.stubGlobal('fetch', vi.fn(async (input: Request | string) => fakeApi(input)));
    // The SSE follower must not hang the test: an empty stream.
  });
  afterEach(() => vi.unstubAllGlobals());

  it('shows the Admin nav item only with the admin scope', () => {
    at('/', viewer);
    const nav = screen.getByRole('navigation', { name: 'Main' });
    expect(within(nav).queryByRole('link', { name: 'Admin' })).toBeNull();
    expect(within(nav).getByRole('link', { name: 'Jobs' })).toBeInTheDocument();
  });

  it('admin sees the Admin nav item', () => {
    at('/', admin);
    expect(within(screen.getByRole('navigation', { name: 'Main' })).getByRole('link', { name: 'Admin' })).toBeInTheDocument();
  });

  it('says "not allowed" at /admin without the scope', () => {
    at('/admin', viewer);
    expect(screen.getByTestId('not-allowed')).toHaveTextContent(/not allowed/);
  });

  it('hides train and cancel on Jobs, and the backtest form, from a viewer', async () => {
    at('/jobs', viewer);
    expect(await screen.findByTestId('jobs-table')).toBeInTheDocument();
    expect(screen.queryByTestId('train-form')).toBeNull();
    expect(screen.queryByRole('button', { name: /Cancel/ })).toBeNull();
  });

  it('shows train and cancel to a user with the train scope', async () => {
    at('/jobs', admin);
    expect(await screen.findByTestId('train-form')).toBeInTheDocument();
    expect(await screen.findByRole('button', { name: /Cancel train job/ })).toBeInTheDocument();
  });

  it('hides the backtest form without the backtest scope', async () => {
    at('/backtests', viewer);
    expect(await screen.findByTestId('backtests-table')).toBeInTheDocument();
    expect(screen.queryByTestId('backtest-form')).toBeNull();
  });

  it('hides promote and archive without models:write, but keeps download', async () => {
    at('/models', viewer);
    expect(await screen.findByRole('button', { name: /Download logreg/ })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: /Promote/ })).toBeNull();
    expect(screen.queryByRole('button', { name: /Archive/ })).toBeNull();
  });

  it('offers promote and archive with models:write', async () => {
    at('/models', admin);
    expect(await screen.findByRole('button', { name: /Promote logreg version 1 to production/ })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: /Archive logreg version 1/ })).toBeInTheDocument();
  });
});
