// The authorization-code flow with PKCE against tradelab's own server.
// sessionStorage holds only the verifier, the state and the path to come
// back to, for the round trip through the server's login page.

import { errorFromResponse } from '../api/problem';
import { challengeS256, makeVerifier, randomString } from './pkce';
import type { TokenResponse } from './tokens';

export const CLIENT_ID = 'tradelab-dashboard';
const PENDING_KEY = 'tradelab.signin';

export interface ServerMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  revocation_endpoint?: string;
  authorization_response_iss_parameter_supported?: boolean;
}

interface Pending {
  verifier: string;
  state: string;
  returnTo: string;
}

let metadataPromise: Promise<ServerMetadata> | null = null;

/**
 * The endpoints, rebased on this page's origin: the dashboard is served by
 * the same server (or the dev server's proxy), so the paths are what
 * matter, and same-origin calls need no CORS.
 */
export function metadata(): Promise<ServerMetadata> {
  metadataPromise ??= fetch('/.well-known/oauth-authorization-server', {
    headers: { Accept: 'application/json' },
  }).then(async (res) => {
    if (!res.ok) throw await errorFromResponse(res);
    const m = (await res.json()) as ServerMetadata;
    const here = (u: string | undefined) => {
      if (!u) return u;
      const url = new URL(u, location.origin);
      return location.origin + url.pathname;
    };
    return {
      ...m,
      authorization_endpoint: here(m.authorization_endpoint)!,
      token_endpoint: here(m.token_endpoint)!,
      revocation_endpoint: here(m.revocation_endpoint),
    };
  });
  metadataPromise.catch(() => {
    metadataPromise = null;
  });
  return metadataPromise;
}

export function redirectUri(): string {
  return `${location.origin}/callback`;
}

/** Builds the authorize URL and remembers what the callback must check. */
export async function authorizeUrl(returnTo: string): Promise<string> {
  const m = await metadata();
  const verifier = makeVerifier();
  const state = randomString(16);
  const pending: Pending = { verifier, state, returnTo };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(m.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: redirectUri(),
    state,
    code_challenge: await challengeS256(verifier),
    code_challenge_method: 'S256',
  }).toString();
  return url.toString();
}

export async function beginSignIn(returnTo: string): Promise<void> {
  location.assign(await authorizeUrl(returnTo));
}

async function tokenRequest(params: Record<string, string>): Promise<TokenResponse> {
  const m = await metadata();
  const res = await fetch(m.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
    body: new URLSearchParams(params).toString(),
  });
  if (!res.ok) throw await errorFromResponse(res);
  return (await res.json()) as TokenResponse;
}

/**
 * Finishes the flow at /callback: checks state and issuer, redeems the
 * code, and returns the tokens and the path to go back to.
 */
export async function completeSignIn(search: string): Promise<{ tokens: TokenResponse; returnTo: string }> {
  const params = new URLSearchParams(search);
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (!raw) throw new Error('This sign-in was not started here (or was already used); sign in again.');
  const pending = JSON.parse(raw) as Pending;
  const error = params.get('error');
  if (error) throw new Error(`${error}: ${params.get('error_description') ?? 'sign-in refused'}`);
  if (params.get('state') !== pending.state) throw new Error('The sign-in answer does not match this sign-in (state); sign in again.');
  const m = await metadata();
  const iss = params.get('iss');
  // RFC 9207: a server that sends `iss` must be the one we asked.
  if ((iss !== null || m.authorization_response_iss_parameter_supported) && iss !== m.issuer) {
    throw new Error('The sign-in answer came from another issuer; sign in again.');
  }
  const code = params.get('code');
  if (!code) throw new Error('The sign-in answer has no code; sign in again.');
  const tokens = await tokenRequest({
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri(),
    client_id: CLIENT_ID,
    code_verifier: pending.verifier,
  });
  const returnTo = pending.returnTo.startsWith('/') && !pending.returnTo.startsWith('//') ? pending.returnTo : '/';
  return { tokens, returnTo };
}

export function refreshTokens(refreshToken: string): Promise<TokenResponse> {
  return tokenRequest({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: CLIENT_ID });
}

/** Revokes the grant behind a refresh token (RFC 7009). */
export async function revoke(token: string): Promise<void> {
  const m = await metadata();
  if (!m.revocation_endpoint) return;
  const res = await fetch(m.revocation_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: CLIENT_ID }).toString(),
  });
  if (!res.ok) throw await errorFromResponse(res);
}
