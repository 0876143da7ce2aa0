import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { authorizeUrl, completeSignIn } from './oauth';

const META = {
  issuer: 'http://issuer.test',
  authorization_endpoint: 'http://issuer.test/oauth/authorize',
  token_endpoint: 'http://issuer.test/oauth/token',
  revocation_endpoint: 'http://issuer.test/oauth/revoke',
  authorization_response_iss_parameter_supported: true,
};

describe('the authorization-code flow', () => {
  let tokenBodies: string[];
  beforeEach(() => {
    tokenBodies = [];
    sessionStorage.clear();
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init?: RequestInit) => {
        if (url.endsWith('/.well-known/oauth-authorization-server')) return new Response(JSON.stringify(META));
        if (url.endsWith('/oauth/token')) {
          tokenBodies.push(String(init?.body));
          return new Response(JSON.stringify({ access_token: 'a', refresh_token: 'r', expires_in: 900 }));
        }
        return new Response('no', { status: 404 });
      }),
    );
  });
  afterEach(() => vi.unstubAllGlobals());

  async function start() {
    const url = new URL(await authorizeUrl('/runs/abc?x=1'));
    return url.searchParams;
  }

  it('sends PKCE S256 to the authorize endpoint on this origin, keeping only verifier/state/path', async () => {
    const q = await start();
    expect(q.get('client_id')).toBe('tradelab-dashboard');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('redirect_uri')).toBe(`${location.origin}/callback`);
    expect(q.get('scope')).toBeNull();
    expect(Object.keys(sessionStorage)).toEqual(['tradelab.signin']);
    const kept = JSON.parse(sessionStorage.getItem('tradelab.signin')!);
    expect(Object.keys(kept).sort()).toEqual(['returnTo', 'state', 'verifier']);
    expect(kept.verifier).toHaveLength(43);
  });

  it('redeems the code with the verifier and clears sessionStorage', async () => {
    const q = await start();
    const verifier = JSON.parse(sessionStorage.getItem('tradelab.signin')!).verifier;
    const { tokens, returnTo } = await completeSignIn(`?code=c1&state=${q.get('state')}&iss=${encodeURIComponent(META.issuer)}`);
    expect(tokens.access_token).toBe('a');
    expect(returnTo).toBe('/runs/abc?x=1');
    expect(sessionStorage.length).toBe(0);
    const body = new URLSearchParams(tokenBodies[0]);
    expect(Object.fromEntries(body)).toEqual({
      grant_type: 'authorization_code',
      code: 'c1',
      redirect_uri: `${location.origin}/callback`,
      client_id: 'tradelab-dashboard',
      code_verifier: verifier,
    });
  });

  it('refuses a mismatched state without calling the token endpoint', async () => {
    await start();
    await expect(completeSignIn(`?code=c1&state=forged&iss=${encodeURIComponent(META.issuer)}`)).rejects.toThrow(/state/);
    expect(tokenBodies).toEqual([]);
  });

  it('refuses an answer from another issuer, or without iss', async () => {
    let q = await start();
    await expect(completeSignIn(`?code=c1&state=${q.get('state')}&iss=http%3A%2F%2Fevil.test`)).rejects.toThrow(/issuer/);
    q = await start();
    await expect(completeSignIn(`?code=c1&state=${q.get('state')}`)).rejects.toThrow(/issuer/);
    expect(tokenBodies).toEqual([]);
  });
});
