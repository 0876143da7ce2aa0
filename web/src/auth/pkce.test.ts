import { describe, expect, it } from 'vitest';
import { base64url, challengeS256, makeVerifier } from './pkce';

describe('PKCE', () => {
  // RFC 7636 appendix B's verifier is ...-mB92K27uhbUJU1p1r_wW1gFWFOEjXk (as
  // crates/auth/src/pkce.rs tests it); the challenge below is of that one.
  it('derives the RFC 7636 appendix B challenge', async () => {
    expect(await challengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('gets the same challenge without crypto.subtle (plain-http pages)', async () => {
    expect(await challengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', undefined)).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
    for (const v of ['', 'abc', 'x'.repeat(55), 'y'.repeat(56), 'z'.repeat(64), 'w'.repeat(200)]) {
      expect(await challengeS256(v, undefined), `length ${v.length}`).toBe(await challengeS256(v));
    }
  });

  it('changes with one character of the verifier', async () => {
    expect(await challengeS256('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl')).not.toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM');
  });

  it('makes verifiers of 43 unreserved characters that differ each time', () => {
    const a = makeVerifier();
    const b = makeVerifier();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });

  it('base64url has no padding or + /', () => {
    expect(base64url(new Uint8Array([0xfb, 0xff, 0xfe]))).toBe('-__-');
    expect(base64url(new Uint8Array([1]))).toBe('AQ');
  });
});
