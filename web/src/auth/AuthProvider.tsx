// The signed-in session: tokens (in memory), who the user is, and what the
// server lets them do. Pages ask `useAuth().can(scope)` to hide controls;
// the server checks every request regardless.

import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
import { api, must, setTokenSource } from '../api/client';
import { asProblem, ApiError, type Problem } from '../api/problem';
import type { Me } from '../api/types';
import { navigate } from '../lib/router';
import { beginSignIn, completeSignIn, refreshTokens, revoke } from './oauth';
import { TokenStore } from './tokens';

export type AuthStatus = 'starting' | 'redirecting' | 'ready' | 'signed-out' | 'error';

export interface AuthState {
  status: AuthStatus;
  me: Me | null;
  error: Problem | null;
  can: (scope: string) => boolean;
  signIn: () => void;
  signOut: () => Promise<void>;
}

const here = () => location.pathname + location.search;

function startSignIn(setStatus?: (s: AuthStatus) => void, setError?: (p: Problem) => void): void {
  setStatus?.('redirecting');
  const back = location.pathname === '/callback' ? '/' : here();
  void beginSignIn(back).catch((e) => {
    setError?.(asProblem(e));
    setStatus?.('error');
  });
}

export const tokenStore = new TokenStore({
  refresh: refreshTokens,
  onExpired: () => startSignIn(),
});

setTokenSource({
  accessToken: () => tokenStore.accessToken,
  refresh: () => tokenStore.refreshNow(),
});

// The code in /callback is single-use; React's development double effects
// must not redeem it twice.
let callbackOnce: ReturnType<typeof completeSignIn> | null = null;

const AuthCtx = createContext<AuthState | null>(null);

/** Who the user is: /v1/me, or the token's scopes when the server lacks it. */
async function whoAmI(): Promise<Me> {
  try {
    return must(await api.GET('/v1/me'));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      return { username: '', role: 'unknown', scopes: tokenStore.scopes };
    }
    throw e;
  }
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const [status, setStatus] = useState<AuthStatus>('starting');
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<Problem | null>(null);

  useEffect(() => {
    let cancelled = false;
    const run = async () => {
      try {
        if (location.pathname === '/callback') {
          callbackOnce ??= completeSignIn(location.search);
          const { tokens, returnTo } = await callbackOnce;
          tokenStore.set(tokens);
          navigate(returnTo, true);
        } else if (!tokenStore.accessToken) {
          startSignIn(setStatus, setError);
          return;
        }
        const who = await whoAmI();
        if (cancelled) return;
        setMe(who);
        setStatus('ready');
      } catch (e) {
        if (cancelled) return;
        setError(asProblem(e));
        setStatus('error');
      }
    };
    void run();
    return () => {
      cancelled = true;
    };
  }, []);

  const signOut = useCallback(async () => {
    const refresh = tokenStore.currentRefreshToken;
    try {
      // Revoking the refresh token ends the whole grant on the server.
      if (refresh) await revoke(refresh);
    } catch (e) {
      setError(asProblem(e));
    } finally {
      tokenStore.clear();
      setMe(null);
      setStatus('signed-out');
    }
  }, []);

  const value = useMemo<AuthState>(() => {
    const scopes = new Set(me?.scopes ?? []);
    return {
      status,
      me,
      error,
      can: (s: string) => scopes.has(s),
      signIn: () => startSignIn(setStatus, setError),
      signOut,
    };
  }, [status, me, error, signOut]);

  return <AuthCtx.Provider value={value}>{children}</AuthCtx.Provider>;
}

export function useAuth(): AuthState {
  const v = useContext(AuthCtx);
  if (!v) throw new Error('useAuth outside AuthProvider');
  return v;
}

/** For tests and stories: a fixed session, no network. */
export function StaticAuth({ value, children }: { value: Partial<AuthState> & { me: Me | null }; children: ReactNode }) {
  const scopes = new Set(value.me?.scopes ?? []);
  const full: AuthState = {
    status: 'ready',
    error: null,
    can: (s) => scopes.has(s),
    signIn: () => {},
    signOut: async () => {},
    ...value,
  };
  return <AuthCtx.Provider value={full}>{children}</AuthCtx.Provider>;
}
