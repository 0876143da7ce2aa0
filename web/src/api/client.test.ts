import { afterEach, describe, expect, it, vi } from 'vitest';
import { authFetch, setTokenSource } from './client';

describe('authFetch', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('sends the bearer token, and on a 401 refreshes once and retries with the body intact', async () => {
    let token = 'old';
    const refresh = vi.fn(async () => (token = 'new'));
    setTokenSource({ accessToken: () => token, refresh });
    const seen: { auth: string | null; body: string }[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (req: Request) => {
        seen.push({ auth: req.headers.get('Authorization'), body: await req.text() });
        return new Response('{}', { status: seen.length === 1 ? 401 : 200 });
      }),
    );
    const res = await authFetch('/v1/backtests', { method: 'POST', body: '{"strategy":"momentum"}' });
    expect(res.status).toBe(200);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(seen).toEqual([
      { auth: 'Bearer old', body: '{"strategy":"momentum"}' },
      { auth: 'Bearer new', body: '{"strategy":"momentum"}' },
    ]);
  });

  it('gives the 401 back when the refresh fails', async () => {
    setTokenSource({ accessToken: () => 'old', refresh: async () => null });
    const fetch = vi.fn(async () => new Response('', { status: 401 }));
    vi.stubGlobal('fetch', fetch);
    expect((await authFetch('/v1/runs')).status).toBe(401);
    expect(fetch).toHaveBeenCalledTimes(1);
  });
});
