//! The token endpoint (RFC 6749 §3.2), revocation (RFC 7009) and
//! introspection (RFC 7662).
//!
//! Clients authenticate with HTTP Basic or with `client_secret` in the
//! form (confidential clients), or name themselves with `client_id` alone
//! (public clients, which must have used PKCE). Every answer is
//! `Cache-Control: no-store`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tradelab_auth::jwt::{self, AccessClaims, Expectations};
use tradelab_auth::scope::{self, ScopeSet};
use tradelab_auth::{pkce, secret};
use tradelab_store::oauth::{ClientRecord, CodeRedemption, DevicePoll, RefreshUse, UserRecord};

use super::params::Params;
use super::{client_address, no_store, role_of, OAuthError};
use crate::state::AppState;
use tradelab_auth::grant;
use tradelab_core::time::now_secs;

/// Seconds a device must wait between polls (RFC 8628 §3.2).
pub const DEVICE_POLL_INTERVAL_SECS: i64 = 2;

/// The credentials a request presented.
struct Presented {
    client_id: String,
    secret: Option<String>,
}

fn presented(headers: &HeaderMap, p: &Params) -> Result<Presented, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")));
    if let Some(encoded) = basic {
        if p.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not HTTP Basic and client_secret both",
            ));
        }
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| OAuthError::invalid_client("the Basic credentials are not valid base64"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client("the Basic credentials have no ':'"))?;
        // RFC 6749 §2.3.1: both halves are form-urlencoded.
        let unescape = |t: &str| {
            form_urlencoded::parse(format!("x={t}").as_bytes())
                .next()
                .map(|(_, v)| v.to_string())
        };
        return Ok(Presented {
            client_id: unescape(id).unwrap_or_default(),
            secret: unescape(secret).filter(|s| !s.is_empty()),
        });
    }
    let client_id = p
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("the client is not identified: send client_id or HTTP Basic"))?;
    Ok(Presented {
        client_id: client_id.to_string(),
        secret: p.get("client_secret").map(str::to_string),
    })
}

/// The client this request comes from, its secret checked.
async fn authenticate(s: &AppState, who: &Presented) -> Result<ClientRecord, OAuthError> {
    let client = s
        .store
        .client(&who.client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client or wrong secret"))?;
    match (&client.secret_hash, &who.secret) {
        (Some(hash), Some(given))
            if secret::constant_time_eq(hash.as_bytes(), secret::hash_secret(given).as_bytes()) =>
        {
            Ok(client)
        }
        (Some(_), _) => Err(OAuthError::invalid_client("unknown client or wrong secret")),
        (None, Some(_)) => Err(OAuthError::invalid_client(
            "a public client has no secret; do not send one",
        )),
        (None, None) => Ok(client),
    }
}

fn allows(client: &ClientRecord, grant: &str) -> bool {
    client.grant_types.iter().any(|g| g == grant)
}

/// Signs an access token (and stores a refresh token) for a grant.
pub async fn issue(
    s: &AppState,
    grant_id: &str,
    client: &ClientRecord,
    user: Option<&UserRecord>,
    scope: &str,
    with_refresh: bool,
) -> Result<Value, OAuthError> {
    let now = now_secs();
    let ttl = s.auth.settings.access_token_secs as i64;
    let claims = AccessClaims {
        iss: s.auth.issuer.clone(),
        sub: user.map_or_else(|| client.client_id.clone(), |u| u.id.clone()),
        aud: s.auth.settings.audience.clone(),
        exp: now + ttl,
        iat: now,
        jti: tradelab_auth::secret::new_secret(""),
        client_id: client.client_id.clone(),
        scope: scope.to_string(),
        sid: grant_id.to_string(),
        username: user.map(|u| u.username.clone()),
    };
    let access = s
        .auth
        .keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .signing
        .sign(&claims);
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": scope,
    });
    if with_refresh && allows(client, grant::REFRESH_TOKEN) {
        let refresh = secret::new_secret("tlr_");
        let days = s.auth.settings.refresh_token_days as i64;
        s.store
            .store_refresh(&secret::hash_secret(&refresh), grant_id, (now + days * 86_400) * 1000)
            .await?;
        body["refresh_token"] = Value::String(refresh);
    }
    Ok(body)
}

/// POST /oauth/token.
pub async fn token(State(s): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    let address = client_address(req.extensions());
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await else {
        return OAuthError::invalid_request("the body is too large").into_response();
    };
    match token_inner(&s, &parts.headers, &address, &body).await {
        Ok(v) => (StatusCode::OK, no_store(), axum::Json(v)).into_response(),
        Err(TokenFailure::Error(e)) => e.into_response(),
        Err(TokenFailure::Limited(r)) => r,
    }
}

enum TokenFailure {
    Error(OAuthError),
    Limited(Response),
}

impl From<OAuthError> for TokenFailure {
    fn from(e: OAuthError) -> Self {
        TokenFailure::Error(e)
    }
}

impl From<tradelab_store::StoreError> for TokenFailure {
    fn from(e: tradelab_store::StoreError) -> Self {
        TokenFailure::Error(e.into())
    }
}

async fn token_inner(s: &AppState, headers: &HeaderMap, address: &str, body: &Bytes) -> Result<Value, TokenFailure> {
    let p = Params::parse(body).map_err(OAuthError::invalid_request)?;
    let who = presented(headers, &p)?;
    if let Err(wait) = s.auth.token_by_address.check(address) {
        return Err(TokenFailure::Limited(OAuthError::too_many(wait)));
    }
    let client = authenticate(s, &who).await?;
    // Per client only once it is known who is asking (issue 19 finding 4):
    // a public client is named by anyone, so its budget is per address too,
    // and junk naming `tradelab-cli` from one address locks nobody else out.
    let client_key = match client.secret_hash {
        Some(_) => format!("client:{}", client.client_id),
        None => format!("client:{}@{address}", client.client_id),
    };
    if let Err(wait) = s.auth.token_by_client.check(&client_key) {
        return Err(TokenFailure::Limited(OAuthError::too_many(wait)));
    }
    let grant_type = p.require("grant_type").map_err(OAuthError::invalid_request)?;
    if !allows(&client, grant_type) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            if [
                grant::AUTHORIZATION_CODE,
                grant::REFRESH_TOKEN,
                grant::CLIENT_CREDENTIALS,
                grant::DEVICE_CODE,
            ]
            .contains(&grant_type)
            {
                "unauthorized_client"
            } else {
                "unsupported_grant_type"
            },
            format!("this client may not use the grant type `{grant_type}`"),
        )
        .into());
    }
    Ok(match grant_type {
        grant::AUTHORIZATION_CODE => authorization_code(s, &client, &p).await?,
        grant::REFRESH_TOKEN => refresh(s, &client, &p).await?,
        grant::CLIENT_CREDENTIALS => client_credentials(s, &client, &p).await?,
        grant::DEVICE_CODE => device_code(s, &client, &p).await?,
        other => {
            return Err(OAuthError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                format!("the grant type `{other}` is not supported"),
            )
            .into())
        }
    })
}

async fn live_user(s: &AppState, user_id: &str) -> Result<UserRecord, OAuthError> {
    let user = s
        .store
        .user(user_id)
        .await
        .map_err(|_| OAuthError::invalid_grant("the user of this grant no longer exists"))?;
    if user.disabled_ms.is_some() {
        return Err(OAuthError::invalid_grant("the user of this grant is disabled"));
    }
    Ok(user)
}

async fn authorization_code(s: &AppState, client: &ClientRecord, p: &Params) -> Result<Value, OAuthError> {
    let code = p.require("code").map_err(OAuthError::invalid_request)?;
    let redirect_uri = p.require("redirect_uri").map_err(OAuthError::invalid_request)?;
    let hash = secret::hash_secret(code);
    let record = match s.store.redeem_code(&hash).await? {
        CodeRedemption::Fresh(r) => r,
        CodeRedemption::Reused(r) => {
            // A replayed code means it leaked: whatever it bought is revoked.
            // (A code also counts as used after a refused redemption, so a
            // verifier cannot be guessed by retrying.)
            return Err(OAuthError::invalid_grant(match &r.grant_id {
                Some(grant) => {
                    s.store.revoke_grant(grant, "authorization code replayed").await?;
                    "the authorization code was already used; the tokens issued from it have been revoked"
                }
                None => "the authorization code was already presented once; start the sign-in again",
            }));
        }
        CodeRedemption::Unknown => return Err(OAuthError::invalid_grant("unknown authorization code")),
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if record.expires_ms <= now_secs() * 1000 {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired; start again",
        ));
    }
    if record.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    match (&record.code_challenge, p.get("code_verifier")) {
        (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier does not match the code_challenge",
            ))
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is missing (PKCE)")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent for a request that had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    let user = live_user(s, &record.user_id).await?;
    let grant = s
        .store
        .create_grant(&client.client_id, Some(&user.id), &record.scope)
        .await?;
    s.store.attach_grant_to_code(&hash, &grant).await?;
    issue(s, &grant, client, Some(&user), &record.scope, true).await
}

async fn refresh(s: &AppState, client: &ClientRecord, p: &Params) -> Result<Value, OAuthError> {
    let token = p.require("refresh_token").map_err(OAuthError::invalid_request)?;
    let hash = secret::hash_secret(token);
    // Everything that can refuse the request is checked before the token is
    // spent: a refused request must leave the client's token usable, or its
    // next refresh would look like a replay and revoke the sign-in.
    let Some((grant, _)) = s.store.refresh_token_state(&hash).await? else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let granted = ScopeSet::parse(&grant.scope).unwrap_or_default();
    let scope = match p.get("scope") {
        None => granted,
        Some(asked) => {
            let asked =
                ScopeSet::parse(asked).map_err(|e| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e))?;
            if !asked.is_subset_of(&granted) {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "a refresh may narrow the scope, not widen it",
                ));
            }
            asked
        }
    };
    let user = match &grant.user_id {
        Some(id) => Some(live_user(s, id).await?),
        None => None,
    };
    // Spent atomically: of two requests racing with one token, one wins and
    // the other is a replay.
    let grant = match s.store.use_refresh(&hash).await? {
        RefreshUse::Fresh(g) => g,
        RefreshUse::Reused { .. } => {
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; every token of its family has been revoked, sign in again",
            ))
        }
        RefreshUse::Dead => {
            return Err(OAuthError::invalid_grant(
                "the refresh token has expired or was revoked",
            ))
        }
        RefreshUse::Unknown => return Err(OAuthError::invalid_grant("unknown refresh token")),
    };
    issue(s, &grant.id, client, user.as_ref(), &scope.to_string(), true).await
}

async fn client_credentials(s: &AppState, client: &ClientRecord, p: &Params) -> Result<Value, OAuthError> {
    if client.secret_hash.is_none() {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "client credentials need a confidential client",
        ));
    }
    let requested = ScopeSet::parse(p.get("scope").unwrap_or(""))
        .map_err(|e| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e))?;
    let allowed = ScopeSet::parse(&client.scopes).unwrap_or_default();
    let granted = scope::grantable(&requested, &allowed, None)
        .map_err(|e| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e))?;
    let scope = granted.to_string();
    let grant = s.store.create_grant(&client.client_id, None, &scope).await?;
    issue(s, &grant, client, None, &scope, false).await
}

async fn device_code(s: &AppState, client: &ClientRecord, p: &Params) -> Result<Value, OAuthError> {
    let code = p.require("device_code").map_err(OAuthError::invalid_request)?;
    let poll = s
        .store
        .poll_device(&secret::hash_secret(code), DEVICE_POLL_INTERVAL_SECS * 1000 - 200)
        .await?;
    let pending = |error: &'static str, d: &str| Err(OAuthError::new(StatusCode::BAD_REQUEST, error, d));
    match poll {
        DevicePoll::Pending => pending("authorization_pending", "the user has not answered yet"),
        DevicePoll::SlowDown => pending("slow_down", "polling too fast; add 5 seconds to the interval"),
        DevicePoll::Denied => pending("access_denied", "the user denied the request"),
        DevicePoll::Expired => pending("expired_token", "the device code has expired or was used; start again"),
        DevicePoll::Unknown => Err(OAuthError::invalid_grant("unknown device code")),
        DevicePoll::Approved {
            user_id,
            client_id,
            scope,
        } => {
            if client_id != client.client_id {
                return Err(OAuthError::invalid_grant(
                    "the device code was issued to another client",
                ));
            }
            let user = live_user(s, &user_id).await?;
            let requested = ScopeSet::parse(&scope).unwrap_or_default();
            let limit = ScopeSet::parse(&client.scopes)
                .unwrap_or_default()
                .intersect(&role_of(&user).scopes());
            let granted = if requested.is_empty() {
                limit
            } else {
                requested.intersect(&limit)
            };
            let scope = granted.to_string();
            let grant = s.store.create_grant(&client.client_id, Some(&user.id), &scope).await?;
            issue(s, &grant, client, Some(&user), &scope, true).await
        }
    }
}

/// Verifies an access token as this server's resource side does, without
/// the revocation check.
pub fn verify_access(s: &AppState, token: &str) -> Result<AccessClaims, jwt::TokenError> {
    // Under the read lock: no copy of the key set per request.
    let ring = s.auth.keys.read().unwrap_or_else(|p| p.into_inner());
    jwt::verify(
        token,
        &ring.published,
        &Expectations {
            issuer: &s.auth.issuer,
            audience: &s.auth.settings.audience,
            now: now_secs(),
            leeway: s.auth.settings.clock_skew_secs as i64,
        },
    )
}

/// POST /oauth/revoke (RFC 7009): always 200 for a token that is unknown
/// or not the caller's; a refresh token takes its whole family with it.
pub async fn revoke(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match revoke_inner(&s, &headers, &body).await {
        Ok(()) => (StatusCode::OK, no_store()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn revoke_inner(s: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<(), OAuthError> {
    let p = Params::parse(body).map_err(OAuthError::invalid_request)?;
    let client = authenticate(s, &presented(headers, &p)?).await?;
    let token = p.require("token").map_err(OAuthError::invalid_request)?;
    if let Some((grant, _)) = s.store.refresh_token_state(&secret::hash_secret(token)).await? {
        if grant.client_id == client.client_id {
            s.store.revoke_grant(&grant.id, "revoked by the client").await?;
        }
        return Ok(());
    }
    if let Ok(claims) = verify_access(s, token) {
        if claims.client_id == client.client_id {
            s.store.revoke_access(&claims.jti, claims.exp * 1000).await?;
        }
    }
    Ok(())
}

/// POST /oauth/introspect (RFC 7662), for confidential clients registered
/// as resource servers: whether a token is active, and what it carries.
pub async fn introspect(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    match introspect_inner(&s, &headers, &body).await {
        Ok(v) => (StatusCode::OK, no_store(), axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn introspect_inner(s: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<Value, OAuthError> {
    let p = Params::parse(body).map_err(OAuthError::invalid_request)?;
    let client = authenticate(s, &presented(headers, &p)?).await?;
    if client.secret_hash.is_none() {
        return Err(OAuthError::invalid_client("introspection needs a confidential client"));
    }
    if !client.resource_server {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            "only clients registered as resource servers may introspect tokens (tradelab auth client add --resource-server)",
        ));
    }
    let token = p.require("token").map_err(OAuthError::invalid_request)?;
    if let Ok(claims) = verify_access(s, token) {
        if s.store.access_revoked(&claims.sid, &claims.jti).await? {
            return Ok(json!({"active": false}));
        }
        let mut v = json!({
            "active": true, "token_type": "Bearer", "scope": claims.scope, "client_id": claims.client_id,
            "sub": claims.sub, "aud": claims.aud, "iss": claims.iss, "exp": claims.exp, "iat": claims.iat,
            "jti": claims.jti,
        });
        if let Some(u) = claims.username {
            v["username"] = Value::String(u);
        }
        return Ok(v);
    }
    if let Some((grant, usable)) = s.store.refresh_token_state(&secret::hash_secret(token)).await? {
        if !usable {
            return Ok(json!({"active": false}));
        }
        let mut v = json!({
            "active": true, "token_type": "refresh_token", "scope": grant.scope, "client_id": grant.client_id,
            "iss": s.auth.issuer,
        });
        if let Some(uid) = &grant.user_id {
            if let Ok(u) = s.store.user(uid).await {
                v["sub"] = Value::String(u.id);
                v["username"] = Value::String(u.username);
            }
        }
        return Ok(v);
    }
    Ok(json!({"active": false}))
}
