//! The authorization server inside `tradelab serve` (OAuth 2.0, RFC 6749,
//! with the current best practice of RFC 9700):
//!
//! - [`authorize`]: the authorization-code flow with PKCE: login page,
//!   first-login password change, consent, code;
//! - [`token`]: the token endpoint (authorization_code, refresh_token,
//!   client_credentials, device_code), revocation (RFC 7009) and
//!   introspection (RFC 7662);
//! - [`device`]: the device authorization grant (RFC 8628);
//! - [`discovery`]: server metadata (RFC 8414) and the JWKS (RFC 7517);
//! - [`pages`]: the server-rendered HTML;
//! - [`start`]: signing keys, the first administrator and the CLI's
//!   client made at start when missing (`tradelab_app::auth_setup`), and
//!   the issuer.
//!
//! Access tokens are EdDSA-signed JWTs (see `tradelab_auth::jwt`); the
//! resource side that checks them is [`crate::guard`]. Login sessions and
//! rate limits live in this process's memory.

pub mod authorize;
pub mod device;
pub mod discovery;
pub mod pages;
pub mod params;
pub mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tradelab_auth::jwt::PublicKey;
use tradelab_auth::ratelimit::{FailureBackoff, RateLimiter};
use tradelab_auth::AuthSettings;

use super::state::AppState;

use tradelab_app::auth_setup;
use tradelab_auth::jwt::KeyRing;
/// Authorization codes live this long.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// A login is remembered (for the next authorization) this long.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);

/// A browser's login, keyed by the session cookie.
#[derive(Clone)]
pub struct LoginSession {
    /// The signed-in user's id.
    pub user_id: String,
    /// Signed in with a one-time password, which must be changed
    /// (`/oauth/password`) before anything else.
    pub must_change_password: bool,
    /// When the session lapses: [`SESSION_TTL`] after sign-in.
    pub expires: Instant,
}

/// The authorization server's state: its issuer, keys, login sessions and
/// rate limits.
pub struct AuthServer {
    /// False only with `tradelab serve --insecure-no-auth`.
    pub enabled: bool,
    /// The `iss` of tokens and server metadata: `auth.issuer`, else
    /// `http://` and the listen address.
    pub issuer: String,
    /// The `auth:` settings.
    pub settings: AuthSettings,
    /// The key new tokens are signed with, and the published keys tokens are
    /// verified against.
    pub keys: RwLock<KeyRing>,
    sessions: Mutex<HashMap<String, LoginSession>>,
    /// Failed sign-ins per user name and address: `auth.login_attempts`
    /// per `auth.login_window_secs` lock that pair out for the window, then
    /// for twice as long at each repeat (at most an hour). Keyed on the
    /// address too, so nobody can lock a user out from elsewhere.
    pub login_by_user: FailureBackoff,
    /// Sign-in attempts per client address: ten times `auth.login_attempts`
    /// per window.
    pub login_by_address: RateLimiter,
    /// Token-endpoint requests per authenticated client (and, for a public
    /// client, which anyone can name, per client and address):
    /// `auth.token_requests_per_minute` a minute.
    pub token_by_client: RateLimiter,
    /// Token-endpoint requests per client address: twice
    /// `auth.token_requests_per_minute` a minute.
    pub token_by_address: RateLimiter,
    /// Device authorization requests per client address:
    /// `auth.token_requests_per_minute` a minute.
    pub device_by_address: RateLimiter,
    /// When expired codes were last purged, milliseconds since the epoch.
    last_purge_ms: std::sync::atomic::AtomicI64,
    /// Signs the forms' CSRF tokens.
    pub csrf: tradelab_auth::csrf::CsrfKey,
}

impl AuthServer {
    /// A server with no sessions yet and rate limits from `settings`.
    pub fn new(enabled: bool, issuer: String, settings: AuthSettings, keys: KeyRing) -> AuthServer {
        let window = Duration::from_secs(settings.login_window_secs);
        let minute = Duration::from_secs(60);
        AuthServer {
            enabled,
            issuer,
            login_by_user: FailureBackoff::new(settings.login_attempts, window, Duration::from_secs(3600)),
            login_by_address: RateLimiter::new(settings.login_attempts * 10, window),
            token_by_client: RateLimiter::new(settings.token_requests_per_minute, minute),
            token_by_address: RateLimiter::new(settings.token_requests_per_minute * 2, minute),
            device_by_address: RateLimiter::new(settings.token_requests_per_minute, minute),
            last_purge_ms: std::sync::atomic::AtomicI64::new(0),
            csrf: tradelab_auth::csrf::CsrfKey::generate(),
            settings,
            keys: RwLock::new(keys),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Deletes expired authorization and device codes, at most once a
    /// minute (issue 19 finding 9: they were kept for ever). Called where
    /// codes are made, so the tables stay as small as the traffic.
    pub async fn purge_expired_codes(&self, store: &tradelab_store::Store) {
        let now = tradelab_core::time::now_ms();
        let last = self.last_purge_ms.load(std::sync::atomic::Ordering::Relaxed);
        if now - last < 60_000
            || self
                .last_purge_ms
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        // A spent code is kept an hour past its expiry, so a late replay is
        // still recognised as one and revokes what it made.
        if let Err(e) = store.purge_expired_codes(now - 3_600_000).await {
            eprintln!("warning: purging expired authorization codes: {e}");
        }
    }

    /// Lets the next [`AuthServer::purge_expired_codes`] run at once.
    #[cfg(test)]
    pub fn allow_purge_now(&self) {
        self.last_purge_ms.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// The public keys the JWKS document lists.
    pub fn published_keys(&self) -> Vec<PublicKey> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).published.clone()
    }

    /// Cookies get `Secure` when the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// A cookie's name: over https with the `__Host-` prefix, which a
    /// browser only accepts from this host, Secure, for Path=/, so a
    /// sibling subdomain cannot plant one. Plain http (a development
    /// server on loopback) cannot set Secure cookies, so it goes without.
    pub fn cookie_name(&self, base: &str) -> String {
        if self.secure_cookies() {
            format!("__Host-{base}")
        } else {
            base.to_string()
        }
    }

    /// Starts a login session lasting [`SESSION_TTL`] and returns its id
    /// (the session cookie's value); expired sessions are dropped meanwhile.
    pub fn start_session(&self, user_id: &str, must_change_password: bool) -> String {
        let id = tradelab_auth::secret::new_secret("");
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(
            id.clone(),
            LoginSession {
                user_id: user_id.to_string(),
                must_change_password,
                expires: now + SESSION_TTL,
            },
        );
        id
    }

    /// The session with this id, unless unknown or expired.
    pub fn session(&self, id: &str) -> Option<LoginSession> {
        let sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.get(id).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// After a password change: clears this session's pending change and
    /// ends the user's other sessions (a browser left signed in elsewhere).
    pub fn password_changed(&self, user_id: &str, id: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|sid, s| sid == id || s.user_id != user_id);
        if let Some(s) = sessions.get_mut(id) {
            s.must_change_password = false;
        }
    }
}

/// The authorization server's routes (none of them needs a token).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/oauth/authorize", get(authorize::start).post(authorize::login))
        .route("/oauth/password", post(authorize::change_password))
        .route("/oauth/consent", post(authorize::consent))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .route("/oauth/introspect", post(token::introspect))
        .route("/oauth/device_authorization", post(device::start))
        .route("/oauth/device", get(device::page).post(device::decide))
        .route("/oauth/jwks.json", get(discovery::jwks))
        .route("/.well-known/oauth-authorization-server", get(discovery::metadata))
}

/// An OAuth error answer (RFC 6749 §5.2): JSON, never cached.
pub struct OAuthError {
    /// The HTTP status answered.
    pub status: StatusCode,
    /// The RFC 6749 error code, such as `invalid_grant`.
    pub error: &'static str,
    /// Human-readable detail, sent as `error_description`.
    pub description: String,
}

impl OAuthError {
    /// An error with this status, code and description.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    /// 400 `invalid_request`: a parameter is missing, repeated or malformed.
    pub fn invalid_request(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }

    /// 400 `invalid_grant`: the code, refresh token or device code presented
    /// is not valid.
    pub fn invalid_grant(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }

    /// 401 `invalid_client`: client authentication failed; the answer
    /// carries a `WWW-Authenticate: Basic` challenge.
    pub fn invalid_client(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }

    /// 500 `server_error`: logs the cause and tells the client only that
    /// `what` failed.
    pub fn server(what: &str, e: impl std::fmt::Display) -> OAuthError {
        eprintln!("error: {what}: {e}");
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            format!("{what} failed on the server; its log has the cause"),
        )
    }

    /// 429 `slow_down` with `Retry-After`: the caller is over a rate limit
    /// for `wait` more.
    pub fn too_many(wait: Duration) -> Response {
        let mut r = OAuthError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "slow_down",
            format!("too many requests; retry in {} s", wait.as_secs().max(1)),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        r
    }
}

impl From<tradelab_store::StoreError> for OAuthError {
    fn from(e: tradelab_store::StoreError) -> OAuthError {
        OAuthError::server("the database", e)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.error, "error_description": self.description});
        let mut r = (self.status, no_store(), axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tradelab\""),
            );
        }
        r
    }
}

/// Token responses and pages with secrets must never be cached.
pub fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")]
}

/// The caller's address, for rate limits: the socket's peer (a proxy in
/// front should be trusted explicitly; X-Forwarded-For is not read).
pub fn client_address(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "local".into())
}

/// One cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A user's role; roles are checked on the way in, so an unreadable one
/// can only come from a damaged row, and grants the least.
pub fn role_of(user: &tradelab_store::oauth::UserRecord) -> tradelab_auth::scope::Role {
    tradelab_auth::scope::Role::parse(&user.role).unwrap_or(tradelab_auth::scope::Role::Viewer)
}

/// Everything at start: keys, first administrator, CLI client; prints
/// what a person must know (a one-time password, auth switched off).
pub async fn start(
    store: &tradelab_store::Store,
    settings: &AuthSettings,
    kek: &tradelab_auth::sealed::KeyEncryptionKey,
    local: std::net::SocketAddr,
    enabled: bool,
) -> anyhow::Result<std::sync::Arc<AuthServer>> {
    let (keys, made) = auth_setup::load_keys(store, settings, kek).await?;
    if let Some(kid) = made {
        eprintln!("auth: new signing key {kid}");
    }
    if let Some(line) = auth_setup::ensure_admin(store).await? {
        eprintln!("auth: {line}");
    }
    auth_setup::ensure_cli_client(store).await?;
    let issuer = auth_setup::issuer_for(settings, local);
    auth_setup::ensure_dashboard_client(store, &issuer).await?;
    if !enabled {
        eprintln!(
            "WARNING: --insecure-no-auth: the API answers every request without a token. Use this only on a development machine."
        );
    }
    Ok(std::sync::Arc::new(AuthServer::new(
        enabled,
        issuer,
        settings.clone(),
        keys,
    )))
}
