//! The device authorization grant (RFC 8628), for `tradelab login --device`
//! on a machine without a browser: the device gets a code pair, the user
//! opens `/oauth/device` anywhere, signs in, types the short code and
//! allows; the device, polling the token endpoint, gets its tokens.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tradelab_auth::scope::ScopeSet;
use tradelab_auth::secret;
use tradelab_store::oauth::UserRecord;

use super::authorize::{csrf_ok, csrf_refused, csrf_token, session_user};
use super::pages;
use super::params::Params;
use super::token::DEVICE_POLL_INTERVAL_SECS;
use super::{no_store, OAuthError};
use crate::state::AppState;
use tradelab_auth::grant;
use tradelab_core::time::now_secs;

/// A device code lives this long.
pub const DEVICE_CODE_TTL_SECS: i64 = 600;

/// POST /oauth/device_authorization.
pub async fn start(State(s): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    // Each request adds a row: limited per address (issue 19 finding 9).
    let address = super::client_address(req.extensions());
    if let Err(wait) = s.auth.device_by_address.check(&address) {
        return OAuthError::too_many(wait).into_response();
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), crate::MAX_BODY_BYTES).await else {
        return OAuthError::invalid_request("the body is too large").into_response();
    };
    s.auth.purge_expired_codes(&s.store).await;
    match start_inner(&s, &body).await {
        Ok(v) => (StatusCode::OK, no_store(), axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn start_inner(s: &AppState, body: &Bytes) -> Result<serde_json::Value, OAuthError> {
    let p = Params::parse(body).map_err(OAuthError::invalid_request)?;
    let client_id = p
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_client("send client_id"))?;
    let client = s
        .store
        .client(client_id)
        .await?
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    if client.secret_hash.is_some() {
        // Devices are public clients: they hold no secret to check here.
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "the device flow is for public clients",
        ));
    }
    if !client.grant_types.iter().any(|g| g == grant::DEVICE_CODE) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use the device flow",
        ));
    }
    let scope = ScopeSet::parse(p.get("scope").unwrap_or(""))
        .map_err(|e| OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", e))?;
    let device_code = secret::new_secret("tld_");
    let expires_ms = (now_secs() + DEVICE_CODE_TTL_SECS) * 1000;
    // A collision of user codes is possible, if unlikely: try again.
    let mut user_code = secret::new_user_code();
    for attempt in 0.. {
        match s
            .store
            .create_device_code(
                &secret::hash_secret(&device_code),
                &user_code,
                client_id,
                &scope.to_string(),
                expires_ms,
            )
            .await
        {
            Ok(()) => break,
            Err(_) if attempt < 3 => user_code = secret::new_user_code(),
            Err(e) => return Err(e.into()),
        }
    }
    let uri = format!("{}/oauth/device", s.auth.issuer);
    Ok(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": uri,
        "verification_uri_complete": format!("{uri}?user_code={user_code}"),
        "expires_in": DEVICE_CODE_TTL_SECS,
        "interval": DEVICE_POLL_INTERVAL_SECS,
    }))
}

fn device_login(s: &AppState, headers: &HeaderMap, user_code: &str) -> Response {
    let (csrf, cookies) = csrf_token(s, headers);
    let carried = vec![
        ("flow".to_string(), "device".to_string()),
        ("user_code".to_string(), user_code.to_string()),
    ];
    pages::login(&carried, &csrf, "a device", None, &cookies, StatusCode::OK)
}

/// The confirmation page for a typed code, or the entry page again.
pub async fn confirm_page(
    s: &AppState,
    user: &UserRecord,
    user_code: &str,
    csrf: &str,
    cookies: &[String],
) -> Response {
    let pending = match s.store.pending_device(user_code).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: reading a device code: {e}");
            return pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Try again later.",
            );
        }
    };
    let Some(request) = pending else {
        let error = (!user_code.is_empty()).then_some("That code is unknown or has expired; check your device.");
        return pages::device_entry(csrf, user_code, error, cookies);
    };
    let client = s.store.client(&request.client_id).await.ok().flatten();
    let client_name = client.as_ref().map_or("an unknown application", |c| c.name.as_str());
    let limit = client
        .as_ref()
        .and_then(|c| ScopeSet::parse(&c.scopes).ok())
        .unwrap_or_default()
        .intersect(&super::role_of(user).scopes());
    let requested = ScopeSet::parse(&request.scope).unwrap_or_default();
    let scopes = if requested.is_empty() {
        limit
    } else {
        requested.intersect(&limit)
    };
    pages::device_confirm(csrf, user_code, client_name, &user.username, &scopes, cookies)
}

/// GET /oauth/device: sign in, then enter (or confirm) the code.
pub async fn page(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let p = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_else(|_| Params::parse(b"").expect("empty"));
    let user_code = secret::normalise_user_code(p.get("user_code").unwrap_or(""));
    match session_user(&s, &headers).await {
        Some((_, session, _)) if session.must_change_password => device_login(&s, &headers, &user_code),
        Some((_, _, user)) => {
            let (csrf, cookies) = csrf_token(&s, &headers);
            if user_code.is_empty() {
                pages::device_entry(&csrf, "", None, &cookies)
            } else {
                confirm_page(&s, &user, &user_code, &csrf, &cookies).await
            }
        }
        None => device_login(&s, &headers, &user_code),
    }
}

/// POST /oauth/device: review a typed code, then allow or deny it.
pub async fn decide(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return pages::message(StatusCode::BAD_REQUEST, "The form is not valid", &e),
    };
    if !csrf_ok(&s, &headers, &p) {
        return csrf_refused();
    }
    let user_code = secret::normalise_user_code(p.get("user_code").unwrap_or(""));
    let user = match session_user(&s, &headers).await {
        Some((_, session, user)) if !session.must_change_password => user,
        _ => return device_login(&s, &headers, &user_code),
    };
    let (csrf, cookies) = csrf_token(&s, &headers);
    let decision = p.get("decision").unwrap_or("review");
    if decision == "review" {
        return confirm_page(&s, &user, &user_code, &csrf, &cookies).await;
    }
    let allow = decision == "allow";
    match s.store.decide_device(&user_code, &user.id, allow).await {
        Ok(true) if allow => pages::message(
            StatusCode::OK,
            "Device connected",
            "The device is signed in. You can close this page and return to it.",
        ),
        Ok(true) => pages::message(StatusCode::OK, "Request denied", "The device was not given access."),
        Ok(false) => pages::device_entry(
            &csrf,
            &user_code,
            Some("That code is unknown, has expired, or was already answered."),
            &cookies,
        ),
        Err(e) => {
            eprintln!("error: recording a device decision: {e}");
            pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Try again later.",
            )
        }
    }
}
