// The typed API client: openapi-fetch over the generated `paths`, so a
// route or field the server changes breaks `tsc`. Every request goes
// through authFetch, which adds the bearer token and, on a 401, refreshes
// once and retries.

import createClient from 'openapi-fetch';
import type { paths } from './schema';
import { ApiError, errorFromResponse, toProblem } from './problem';
import { readEvents, type SseEvent } from './sse';

/** What authFetch needs from the session; set by the AuthProvider. */
export interface TokenSource {
  accessToken(): string | null;
  /** Renews the tokens; null when that failed (sign-in restarts). */
  refresh(): Promise<string | null>;
}

let tokens: TokenSource = { accessToken: () => null, refresh: async () => null };

export function setTokenSource(t: TokenSource): void {
  tokens = t;
}

function withToken(req: Request, token: string | null): Request {
  const r = new Request(req);
  if (token) r.headers.set('Authorization', `Bearer ${token}`);
  return r;
}

export async function authFetch(input: Request | string, init?: RequestInit): Promise<Response> {
  const req = typeof input === 'string' ? new Request(new URL(input, location.origin), init) : input;
  // Kept unsent: a body can be read once, and the retry needs it.
  const spare = req.clone();
  const res = await globalThis.fetch(withToken(req, tokens.accessToken()));
  if (res.status !== 401) return res;
  const fresh = await tokens.refresh();
  if (!fresh) return res;
  return globalThis.fetch(withToken(spare, fresh));
}

export const api = createClient<paths>({
  baseUrl: typeof location === 'undefined' ? 'http://localhost' : location.origin,
  fetch: (req: Request) => authFetch(req),
});

/** openapi-fetch's answer, as data or a thrown ApiError. */
export function must<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.error !== undefined || !r.response.ok) {
    throw new ApiError(toProblem(r.error, r.response.status, r.response.statusText));
  }
  return r.data as T;
}

/** A GET returning JSON, for the few documents typed loosely (reports). */
export async function getJson<T = unknown>(path: string): Promise<T> {
  const res = await authFetch(path, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw await errorFromResponse(res);
  return (await res.json()) as T;
}

/**
 * Follows a server-sent event stream until it ends, the signal aborts, or
 * the server says `denied` (the token expired mid-stream): then it
 * refreshes and reconnects, which replays the stream from its start.
 */
export async function followEvents(
  path: string,
  onEvent: (e: SseEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  for (let attempt = 0; attempt < 5 && !signal.aborted; attempt++) {
    const res = await authFetch(path, { headers: { Accept: 'text/event-stream' }, signal });
    if (!res.ok) throw await errorFromResponse(res);
    let denied = false;
    await readEvents(
      res,
      (e) => {
        if (e.event === 'denied') denied = true;
        else onEvent(e);
      },
      signal,
    );
    if (!denied) return;
    if (!(await tokens.refresh())) return;
  }
}

/** Downloads an authenticated file and hands it to the browser to save. */
export async function downloadFile(path: string, fallbackName: string): Promise<void> {
  const res = await authFetch(path);
  if (!res.ok) throw await errorFromResponse(res);
  const disposition = res.headers.get('Content-Disposition') ?? '';
  const name = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? fallbackName;
  saveBlob(await res.blob(), name);
}

export function saveBlob(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
