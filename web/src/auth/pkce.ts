// PKCE (RFC 7636) for the authorization-code flow of a public client.

import { sha256 } from './sha256';

export function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** A random URL-safe string from `bytes` random bytes (32 → 43 chars). */
export function randomString(bytes = 32): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  return base64url(buf);
}

/** A code verifier: 43 chars of 256 random bits, within RFC 7636's 43..128. */
export function makeVerifier(): string {
  return randomString(32);
}

/** The S256 challenge: base64url(sha256(ascii(verifier))). */
export async function challengeS256(verifier: string, subtle: SubtleCrypto | undefined = globalThis.crypto?.subtle): Promise<string> {
  const bytes = new TextEncoder().encode(verifier);
  if (!subtle) return base64url(sha256(bytes));
  return base64url(new Uint8Array(await subtle.digest('SHA-256', bytes)));
}
