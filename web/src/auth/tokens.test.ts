import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenStore, type TokenResponse } from './tokens';

describe('TokenStore', () => {
  const storageCalls: string[] = [];
  beforeEach(() => {
    vi.useFakeTimers();
    storageCalls.length = 0;
    for (const m of ['setItem', 'getItem', 'removeItem', 'clear', 'key'] as const) {
      vi.spyOn(Storage.prototype, m).mockImplementation(function (this: Storage, ...args: unknown[]) {
        storageCalls.push(`${this === localStorage ? 'local' : 'session'}.${m}(${args.join(',')})`);
        return null as never;
      });
    }
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const grant = (n: number, expires_in = 300): TokenResponse => ({
    access_token: `access-${n}`,
    refresh_token: `refresh-${n}`,
    expires_in,
    scope: 'data:read models:read',
  });

  it('refreshes a minute before expiry with the current refresh token, and rotates it', async () => {
    const refresh = vi.fn(async (rt: string) => grant(Number(rt.split('-')[1]) + 1));
    const store = new TokenStore({ refresh, onExpired: vi.fn() });
    store.set(grant(1, 300));
    expect(store.accessToken).toBe('access-1');
    expect(store.scopes).toEqual(['data:read', 'models:read']);

    await vi.advanceTimersByTimeAsync(239_000);
    expect(refresh).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(refresh).toHaveBeenCalledWith('refresh-1');
    expect(store.accessToken).toBe('access-2');
    expect(store.currentRefreshToken).toBe('refresh-2');

    // And again on the new token's schedule.
    await vi.advanceTimersByTimeAsync(240_000);
    expect(refresh).toHaveBeenLastCalledWith('refresh-2');
    expect(store.accessToken).toBe('access-3');
  });

  it('shares one refresh between concurrent callers', async () => {
    let release!: (t: TokenResponse) => void;
    const refresh = vi.fn(() => new Promise<TokenResponse>((r) => (release = r)));
    const store = new TokenStore({ refresh, onExpired: vi.fn() });
    store.set(grant(1));
    const a = store.refreshNow();
    const b = store.refreshNow();
    release(grant(2));
    expect(await a).toBe('access-2');
    expect(await b).toBe('access-2');
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it('drops the tokens and asks for sign-in when refresh fails', async () => {
    const onExpired = vi.fn();
    const store = new TokenStore({ refresh: vi.fn(async () => Promise.reject(new Error('invalid_grant'))), onExpired });
    store.set(grant(1));
    expect(await store.refreshNow()).toBeNull();
    expect(store.accessToken).toBeNull();
    expect(store.currentRefreshToken).toBeNull();
    expect(onExpired).toHaveBeenCalledTimes(1);
  });

  it('clear() cancels the scheduled refresh', async () => {
    const refresh = vi.fn(async () => grant(2));
    const store = new TokenStore({ refresh, onExpired: vi.fn() });
    store.set(grant(1, 120));
    store.clear();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(refresh).not.toHaveBeenCalled();
  });

  it('never touches localStorage or sessionStorage', async () => {
    const store = new TokenStore({ refresh: async () => grant(2), onExpired: () => {} });
    store.set(grant(1, 90));
    await vi.advanceTimersByTimeAsync(120_000);
    await store.refreshNow();
    store.clear();
    expect(storageCalls).toEqual([]);
    // The spy itself works: a direct call is seen.
    localStorage.setItem('probe', 'x');
    expect(storageCalls).toEqual(['local.setItem(probe,x)']);
  });
});
