//! The authorization endpoint: the authorization-code flow with PKCE.
//!
//! GET `/oauth/authorize` checks the request and shows the login page (or,
//! for a browser already signed in, the consent page). The login form
//! posts back to `/oauth/authorize`; a one-time password leads to
//! `/oauth/password`; the consent form posts to `/oauth/consent`, which
//! redirects to the client with a code. Every form carries the original
//! request, which is checked again at each step, and a CSRF token that
//! must match the browser's cookie.
//!
//! The device flow (`device`) reuses the login and password steps with
//! `flow=device`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tradelab_auth::scope::{self, ScopeSet};
use tradelab_auth::{password, pkce, redirect, secret};
use tradelab_store::oauth::{ClientRecord, NewCode, UserRecord};

use super::pages::{self, CSRF_COOKIE, SESSION_COOKIE};
use super::params::Params;
use super::{client_address, cookie, role_of, CODE_TTL, SESSION_TTL};
use crate::state::AppState;
use tradelab_auth::grant;
use tradelab_core::time::now_secs;

/// The parameters of an authorization request, carried through the forms.
const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "flow",
    "user_code",
];

/// A checked authorization request.
pub struct AuthRequest {
    /// The registered client asking.
    pub client: ClientRecord,
    /// Where the answer goes: the request's URI, matched against the
    /// client's registered ones, or its only registered one.
    pub redirect_uri: String,
    /// The scopes asked for (possibly none).
    pub requested: ScopeSet,
    /// The client's `state`, echoed back in the redirect.
    pub state: Option<String>,
    /// The PKCE S256 code challenge; `None` only for a confidential client
    /// that sent none.
    pub challenge: Option<String>,
}

/// Where a signed-in browser goes next.
pub enum Continuation {
    /// The authorization-code flow: consent, then a redirect with a code.
    Authorize(Box<AuthRequest>),
    /// The device flow: confirm the device showing the code.
    Device {
        /// The code the device shows, normalised.
        user_code: String,
    },
}

fn carried(p: &Params) -> Vec<(String, String)> {
    CARRIED
        .iter()
        .filter_map(|k| p.get(k).map(|v| (k.to_string(), v.to_string())))
        .collect()
}

/// A redirect back to the client (RFC 6749 §4.1.2, with RFC 9207's `iss`).
pub fn redirect_to_client(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{sep}{}", query.finish());
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn refuse(s: &AppState, req_uri: &str, state: Option<&str>, error: &str, description: &str) -> Response {
    let mut pairs = vec![("error", error), ("error_description", description)];
    if let Some(st) = state {
        pairs.push(("state", st));
    }
    pairs.push(("iss", &s.auth.issuer));
    redirect_to_client(req_uri, &pairs)
}

/// Checks an authorization request. Problems with the client or the
/// redirect URI are shown to the user (redirecting would send the answer
/// to an unverified place); the rest go back to the client.
pub async fn check_request(s: &AppState, p: &Params) -> Result<AuthRequest, Response> {
    let bad_page = |text: &str| pages::message(StatusCode::BAD_REQUEST, "This sign-in link is not valid", text);
    let Some(client_id) = p.get("client_id") else {
        return Err(bad_page("The request names no client (client_id is missing)."));
    };
    let client = match s.store.client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(bad_page(
                "The application asking to sign you in is not registered here.",
            ))
        }
        Err(e) => {
            eprintln!("error: looking up a client: {e}");
            return Err(pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The server could not read its database; try again later.",
            ));
        }
    };
    let redirect_uri = match p.get("redirect_uri") {
        Some(u) if redirect::matches(&client.redirect_uris, u) => u.to_string(),
        Some(_) => {
            return Err(bad_page(
                "The redirect URI is not one registered for this application, so the sign-in stops here.",
            ))
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(bad_page("The request must name its redirect_uri.")),
    };
    let state = p.get("state").map(str::to_string);
    let refuse = |error: &str, description: &str| refuse(s, &redirect_uri, state.as_deref(), error, description);
    if p.get("response_type") != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !client.grant_types.iter().any(|g| g == grant::AUTHORIZATION_CODE) {
        return Err(refuse(
            "unauthorized_client",
            "this client may not use the authorization-code flow",
        ));
    }
    let challenge = match (p.get("code_challenge"), p.get("code_challenge_method")) {
        (Some(c), Some("S256")) if pkce::valid_challenge(c) => Some(c.to_string()),
        (Some(_), Some("S256")) => return Err(refuse("invalid_request", "code_challenge is not a S256 challenge")),
        (Some(_), _) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method must be S256 (plain is refused)",
            ))
        }
        (None, Some(_)) => {
            return Err(refuse(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ))
        }
        (None, None) if client.secret_hash.is_none() => {
            return Err(refuse(
                "invalid_request",
                "PKCE is required: send code_challenge with method S256",
            ))
        }
        (None, None) => None,
    };
    let requested = match ScopeSet::parse(p.get("scope").unwrap_or("")) {
        Ok(sc) => sc,
        Err(e) => return Err(refuse("invalid_scope", &e)),
    };
    Ok(AuthRequest {
        client,
        redirect_uri,
        requested,
        state,
        challenge,
    })
}

async fn continuation(s: &AppState, p: &Params) -> Result<Continuation, Response> {
    if p.get("flow") == Some("device") {
        return Ok(Continuation::Device {
            user_code: secret::normalise_user_code(p.get("user_code").unwrap_or("")),
        });
    }
    check_request(s, p).await.map(|r| Continuation::Authorize(Box::new(r)))
}

/// The browser's CSRF token, or a new one with the cookie that sets it.
pub fn csrf_token(s: &AppState, headers: &HeaderMap) -> (String, Vec<String>) {
    let session = cookie(headers, &s.auth.cookie_name(SESSION_COOKIE));
    let (nonce, cookies) = match cookie(headers, &s.auth.cookie_name(CSRF_COOKIE))
        .filter(|c| c.len() >= tradelab_auth::csrf::MIN_NONCE_LEN)
    {
        Some(n) => (n, vec![]),
        None => {
            let n = secret::new_secret("");
            let c = pages::set_cookie(
                &s.auth.cookie_name(CSRF_COOKIE),
                &n,
                SESSION_TTL.as_secs(),
                s.auth.secure_cookies(),
            );
            (n, vec![c])
        }
    };
    (s.auth.csrf.token(&nonce, session.as_deref()), cookies)
}

/// The token for a form rendered just after sign-in, bound to the new
/// session (`fallback` when the request had no nonce, which a form that
/// passed [`csrf_ok`] always has).
fn csrf_token_for_session(s: &AppState, headers: &HeaderMap, session: &str, fallback: String) -> String {
    cookie(headers, &s.auth.cookie_name(CSRF_COOKIE)).map_or(fallback, |n| s.auth.csrf.token(&n, Some(session)))
}

/// Whether the form's CSRF token is the server's HMAC of the cookie's
/// nonce and the browser's session.
pub fn csrf_ok(s: &AppState, headers: &HeaderMap, p: &Params) -> bool {
    let session = cookie(headers, &s.auth.cookie_name(SESSION_COOKIE));
    match (cookie(headers, &s.auth.cookie_name(CSRF_COOKIE)), p.get("csrf")) {
        (Some(nonce), Some(token)) => s.auth.csrf.verify(&nonce, session.as_deref(), token),
        _ => false,
    }
}

/// The 403 page for a form whose CSRF token does not match the cookie.
pub fn csrf_refused() -> Response {
    pages::message(
        StatusCode::FORBIDDEN,
        "The form has expired",
        "The form expired or came from another site. Go back to the application and start signing in again.",
    )
}

/// The signed-in, enabled user of this browser, if any.
pub async fn session_user(s: &AppState, headers: &HeaderMap) -> Option<(String, super::LoginSession, UserRecord)> {
    let id = cookie(headers, &s.auth.cookie_name(SESSION_COOKIE))?;
    let session = s.auth.session(&id)?;
    let user = s.store.user(&session.user_id).await.ok()?;
    user.disabled_ms.is_none().then_some((id, session, user))
}

/// The next page for a signed-in user.
async fn proceed(
    s: &AppState,
    user: &UserRecord,
    next: Continuation,
    carried: &[(String, String)],
    csrf: &str,
    cookies: &[String],
) -> Response {
    match next {
        Continuation::Authorize(req) => {
            let client_scopes = ScopeSet::parse(&req.client.scopes).unwrap_or_default();
            match scope::grantable(&req.requested, &client_scopes, Some(role_of(user))) {
                // The dashboard is this server's own page, redirecting only
                // to this server: asking the user to consent to it would
                // teach people to click through consent pages.
                Ok(granted) if req.client.client_id == grant::DASHBOARD_CLIENT_ID => {
                    issue_code(s, &req, user, &granted).await
                }
                Ok(granted) => pages::consent(carried, csrf, &req.client.name, &user.username, &granted, cookies),
                Err(e) => refuse(s, &req.redirect_uri, req.state.as_deref(), "invalid_scope", &e),
            }
        }
        Continuation::Device { user_code } => super::device::confirm_page(s, user, &user_code, csrf, cookies).await,
    }
}

/// GET /oauth/authorize: check the request, then sign in or consent.
pub async fn start(State(s): State<Arc<AppState>>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    let p = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(e) => return pages::message(StatusCode::BAD_REQUEST, "This sign-in link is not valid", &e),
    };
    let req = match check_request(&s, &p).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let (csrf, cookies) = csrf_token(&s, &headers);
    let carried = carried(&p);
    match session_user(&s, &headers).await {
        Some((_, session, _)) if session.must_change_password => {
            pages::change_password(&carried, &csrf, false, None, &cookies)
        }
        Some((_, _, user)) => {
            proceed(
                &s,
                &user,
                Continuation::Authorize(Box::new(req)),
                &carried,
                &csrf,
                &cookies,
            )
            .await
        }
        None => pages::login(&carried, &csrf, &req.client.name, None, &cookies, StatusCode::OK),
    }
}

/// POST /oauth/authorize: the login form.
pub async fn login(State(s): State<Arc<AppState>>, headers: HeaderMap, req: axum::extract::Request) -> Response {
    let address = client_address(req.extensions());
    let body = match axum::body::to_bytes(req.into_body(), crate::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return pages::message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form is too large",
                "Go back and try again.",
            )
        }
    };
    login_form(s, headers, address, body).await
}

async fn login_form(s: Arc<AppState>, headers: HeaderMap, address: String, body: Bytes) -> Response {
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return pages::message(StatusCode::BAD_REQUEST, "The form is not valid", &e),
    };
    if !csrf_ok(&s, &headers, &p) {
        return csrf_refused();
    }
    let next = match continuation(&s, &p).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let client_name = match &next {
        Continuation::Authorize(r) => r.client.name.clone(),
        Continuation::Device { .. } => "a device".to_string(),
    };
    let (csrf, cookies) = csrf_token(&s, &headers);
    let carried = carried(&p);
    let username = p.get("username").unwrap_or("").trim().to_string();
    let password_given = p.get("password").unwrap_or("").to_string();
    // Limits first, so a guesser learns nothing once over them, not even
    // whether a guess was right.
    // Names are at most 64 characters; a longer one cannot bloat the limiter.
    let user_key = format!(
        "user:{}@{address}",
        username.chars().take(64).collect::<String>().to_lowercase()
    );
    let limited = s
        .auth
        .login_by_address
        .check(&address)
        .and_then(|()| s.auth.login_by_user.check(&user_key));
    if let Err(wait) = limited {
        let mut r = pages::login(
            &carried,
            &csrf,
            &client_name,
            Some(&format!(
                "Too many sign-in attempts. Wait {} s and try again.",
                wait.as_secs().max(1)
            )),
            &cookies,
            StatusCode::TOO_MANY_REQUESTS,
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return r;
    }
    let user = match s.store.user_by_name(&username).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: looking up a user: {e}");
            return pages::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Try again later.",
            );
        }
    };
    let stored = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| password::decoy_hash().to_string());
    let matches = tokio::task::spawn_blocking(move || password::verify_password(&password_given, &stored))
        .await
        .unwrap_or(false);
    let user = match user {
        Some(u) if matches => u,
        _ => {
            s.auth.login_by_user.fail(&user_key);
            return pages::login(
                &carried,
                &csrf,
                &client_name,
                Some("Wrong user name or password."),
                &cookies,
                StatusCode::UNAUTHORIZED,
            );
        }
    };
    if user.disabled_ms.is_some() {
        return pages::message(
            StatusCode::FORBIDDEN,
            "This account is disabled",
            "Ask an administrator to enable it (tradelab auth user enable).",
        );
    }
    s.auth.login_by_user.succeed(&user_key);
    let session = s.auth.start_session(&user.id, user.must_change_password);
    let mut cookies = cookies;
    cookies.push(pages::set_cookie(
        &s.auth.cookie_name(SESSION_COOKIE),
        &session,
        SESSION_TTL.as_secs(),
        s.auth.secure_cookies(),
    ));
    // The next form is posted with the new session cookie.
    let csrf = csrf_token_for_session(&s, &headers, &session, csrf);
    if user.must_change_password {
        return pages::change_password(&carried, &csrf, false, None, &cookies);
    }
    proceed(&s, &user, next, &carried, &csrf, &cookies).await
}

/// POST /oauth/password: the first-login password change.
///
/// A one-time password is replaced without asking for it again (it was just
/// used to sign in); any other change needs the current password, guessed
/// under the sign-in limits. A change revokes every grant the user holds
/// and ends their other sign-in sessions (issue 19 finding 16).
pub async fn change_password(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    let address = client_address(req.extensions());
    let Ok(body) = axum::body::to_bytes(req.into_body(), crate::MAX_BODY_BYTES).await else {
        return pages::message(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large",
            "Go back and try again.",
        );
    };
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return pages::message(StatusCode::BAD_REQUEST, "The form is not valid", &e),
    };
    if !csrf_ok(&s, &headers, &p) {
        return csrf_refused();
    }
    let Some((session_id, _, user)) = session_user(&s, &headers).await else {
        return pages::message(
            StatusCode::UNAUTHORIZED,
            "Your sign-in has expired",
            "Go back to the application and sign in again.",
        );
    };
    let next = match continuation(&s, &p).await {
        Ok(n) => n,
        Err(r) => return r,
    };
    let (csrf, cookies) = csrf_token(&s, &headers);
    let carried = carried(&p);
    let one_time = user.must_change_password;
    if !one_time {
        let user_key = format!("user:{}@{address}", user.username.to_lowercase());
        if let Err(wait) = s.auth.login_by_user.check(&user_key) {
            let mut r = pages::change_password(
                &carried,
                &csrf,
                true,
                Some(&format!(
                    "Too many attempts. Wait {} s and try again.",
                    wait.as_secs().max(1)
                )),
                &cookies,
            );
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            return r;
        }
        let current = p.get("current_password").unwrap_or("").to_string();
        let stored = user.password_hash.clone();
        let right = tokio::task::spawn_blocking(move || password::verify_password(&current, &stored))
            .await
            .unwrap_or(false);
        if !right {
            s.auth.login_by_user.fail(&user_key);
            let mut r = pages::change_password(&carried, &csrf, true, Some("The current password is wrong."), &cookies);
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            return r;
        }
    }
    let new = p.get("new_password").unwrap_or("").to_string();
    let problem = if Some(new.as_str()) != p.get("confirm") {
        Some("The two passwords differ.".to_string())
    } else {
        password::check_new_password(&new).err()
    };
    if let Some(problem) = problem {
        return pages::change_password(&carried, &csrf, !one_time, Some(&problem), &cookies);
    }
    let old = user.password_hash.clone();
    let new_for_hash = new.clone();
    let hashed = tokio::task::spawn_blocking(move || {
        (!password::verify_password(&new_for_hash, &old)).then(|| password::hash_password(&new_for_hash))
    })
    .await
    .ok()
    .flatten();
    let Some(hash) = hashed else {
        return pages::change_password(
            &carried,
            &csrf,
            !one_time,
            Some("Choose a password different from the current one."),
            &cookies,
        );
    };
    if let Err(e) = s.store.change_password(&user.id, &hash).await {
        eprintln!("error: saving a password: {e}");
        return pages::message(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Try again later.",
        );
    }
    s.auth.password_changed(&user.id, &session_id);
    proceed(&s, &user, next, &carried, &csrf, &cookies).await
}

/// POST /oauth/consent: allow (a code goes to the client) or deny.
pub async fn consent(State(s): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(e) => return pages::message(StatusCode::BAD_REQUEST, "The form is not valid", &e),
    };
    if !csrf_ok(&s, &headers, &p) {
        return csrf_refused();
    }
    let req = match check_request(&s, &p).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = match session_user(&s, &headers).await {
        Some((_, session, user)) if !session.must_change_password => user,
        _ => {
            return pages::message(
                StatusCode::UNAUTHORIZED,
                "Your sign-in has expired",
                "Go back to the application and sign in again.",
            )
        }
    };
    let state = req.state.as_deref();
    if p.get("decision") != Some("allow") {
        return refuse(
            &s,
            &req.redirect_uri,
            state,
            "access_denied",
            "the user denied the request",
        );
    }
    let client_scopes = ScopeSet::parse(&req.client.scopes).unwrap_or_default();
    let granted = match scope::grantable(&req.requested, &client_scopes, Some(role_of(&user))) {
        Ok(g) => g,
        Err(e) => return refuse(&s, &req.redirect_uri, state, "invalid_scope", &e),
    };
    issue_code(&s, &req, &user, &granted).await
}

/// A code for `granted` goes to the client: the redirect after consent,
/// or at once for the first-party dashboard.
async fn issue_code(s: &AppState, req: &AuthRequest, user: &UserRecord, granted: &ScopeSet) -> Response {
    let state = req.state.as_deref();
    s.auth.purge_expired_codes(&s.store).await;
    let code = secret::new_secret("tlc_");
    let scope_text = granted.to_string();
    let stored = s
        .store
        .store_code(&NewCode {
            code_hash: &secret::hash_secret(&code),
            client_id: &req.client.client_id,
            user_id: &user.id,
            redirect_uri: &req.redirect_uri,
            scope: &scope_text,
            code_challenge: req.challenge.as_deref(),
            expires_ms: now_secs() * 1000 + CODE_TTL.as_millis() as i64,
        })
        .await;
    if let Err(e) = stored {
        eprintln!("error: storing a code: {e}");
        return refuse(
            s,
            &req.redirect_uri,
            state,
            "server_error",
            "the server could not store the code",
        );
    }
    let mut pairs = vec![("code", code.as_str())];
    if let Some(st) = state {
        pairs.push(("state", st));
    }
    pairs.push(("iss", &s.auth.issuer));
    redirect_to_client(&req.redirect_uri, &pairs)
}
