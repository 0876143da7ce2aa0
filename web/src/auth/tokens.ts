// The access and refresh tokens, held only in this module's memory: never
// in localStorage or sessionStorage, where any script on the origin (or
// anyone at the keyboard later) could read them. A reload signs in again,
// which the server's session cookie makes silent.

export interface TokenResponse {
  access_token: string;
  token_type?: string;
  expires_in?: number;
  refresh_token?: string;
  scope?: string;
}

export interface TokenStoreOptions {
  /** Exchanges a refresh token for new tokens (the token endpoint). */
  refresh: (refreshToken: string) => Promise<TokenResponse>;
  /** Called when tokens cannot be renewed: sign in again. */
  onExpired: () => void;
  /** Refresh this long before the access token expires. */
  leewayMs?: number;
  now?: () => number;
}

type Listener = () => void;

export class TokenStore {
  private access: string | null = null;
  private refreshToken: string | null = null;
  private scope: string[] = [];
  private expiresAt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inflight: Promise<string | null> | null = null;
  private listeners = new Set<Listener>();
  private readonly opts: Required<TokenStoreOptions>;

  constructor(opts: TokenStoreOptions) {
    this.opts = { leewayMs: 60_000, now: () => Date.now(), ...opts };
  }

  get accessToken(): string | null {
    return this.access;
  }
  get currentRefreshToken(): string | null {
    return this.refreshToken;
  }
  get scopes(): string[] {
    return this.scope;
  }
  get expiresAtMs(): number {
    return this.expiresAt;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Takes a token endpoint answer and schedules the next refresh. */
  set(t: TokenResponse): void {
    this.access = t.access_token;
    // Refresh tokens rotate; an answer without one keeps the old.
    if (t.refresh_token) this.refreshToken = t.refresh_token;
    if (t.scope !== undefined) this.scope = t.scope.split(/\s+/).filter(Boolean);
    const ttlMs = (t.expires_in ?? 3600) * 1000;
    this.expiresAt = this.opts.now() + ttlMs;
    this.schedule(Math.max(ttlMs - this.opts.leewayMs, Math.min(ttlMs / 2, 5_000)));
    this.emit();
  }

  clear(): void {
    this.access = null;
    this.refreshToken = null;
    this.scope = [];
    this.expiresAt = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.emit();
  }

  /**
   * Renews the tokens now; concurrent callers share one request (several
   * requests hitting 401 at once must not spend the refresh token twice,
   * which the server would read as theft). Resolves to the new access
   * token, or null after calling onExpired.
   */
  refreshNow(): Promise<string | null> {
    if (this.inflight) return this.inflight;
    const token = this.refreshToken;
    if (!token) {
      this.clear();
      this.opts.onExpired();
      return Promise.resolve(null);
    }
    this.inflight = this.opts
      .refresh(token)
      .then((t) => {
        this.set(t);
        return t.access_token;
      })
      .catch(() => {
        this.clear();
        this.opts.onExpired();
        return null;
      })
      .finally(() => {
        this.inflight = null;
      });
    return this.inflight;
  }

  private schedule(delayMs: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.refreshNow();
    }, delayMs);
  }

  private emit(): void {
    for (const l of this.listeners) l();
  }
}
