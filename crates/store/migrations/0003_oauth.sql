-- The authorization server: people, clients, and everything a grant
-- leaves behind. Secrets (codes, refresh tokens, client secrets, device
-- codes) are stored as SHA-256 hashes, passwords as argon2id hashes.

CREATE TABLE auth_users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    must_change_password BIGINT NOT NULL,
    disabled_ms BIGINT,
    created_ms BIGINT NOT NULL
);

CREATE TABLE auth_clients (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- NULL for a public client (it holds no secret and must use PKCE).
    secret_hash TEXT,
    -- JSON lists.
    redirect_uris TEXT NOT NULL,
    grant_types TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

-- A grant is a token family: one authorization (a code redeemed, a device
-- approved, a client-credentials request) and every token issued from it.
-- Revoking it revokes them all.
CREATE TABLE auth_grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT,
    scope TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT,
    revoked_reason TEXT
);
CREATE INDEX auth_grants_user ON auth_grants (user_id);
CREATE INDEX auth_grants_client ON auth_grants (client_id);

CREATE TABLE auth_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT,
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT,
    -- The grant its redemption created, revoked if the code is replayed.
    grant_id TEXT
);

CREATE TABLE auth_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES auth_grants (id),
    expires_ms BIGINT NOT NULL,
    used_ms BIGINT,
    created_ms BIGINT NOT NULL
);
CREATE INDEX auth_refresh_grant ON auth_refresh_tokens (grant_id);

-- Access tokens revoked one by one (RFC 7009); kept until they expire.
CREATE TABLE auth_revoked_access (
    jti TEXT PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);

CREATE TABLE auth_signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    -- PKCS#8, hex.
    private_key TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    -- Set when a newer key took over signing. Still published until every
    -- token it signed has expired.
    retired_ms BIGINT
);

-- RFC 8628 device authorization.
CREATE TABLE auth_device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    last_poll_ms BIGINT,
    user_id TEXT,
    -- 'pending', 'approved', 'denied' or 'used'.
    state TEXT NOT NULL
);

-- Who asked for each decision: `user via client`, or the client.
ALTER TABLE decisions ADD COLUMN caller TEXT;
