//! The resource server: every API route names the scope it needs, and
//! this middleware lets a request through only with a bearer token
//! (RFC 6750) that verifies (algorithm, signature, issuer, audience,
//! expiry within the clock skew), has not been revoked, and carries a
//! needed scope.
//!
//! - no token, or one that fails: 401 with `WWW-Authenticate: Bearer`
//!   (and `error="invalid_token"` when one was sent);
//! - a good token without the scope: 403 with `error="insufficient_scope"`.
//!
//! The caller's identity goes into the request as a [`Caller`].

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use super::state::AppState;

/// Who is calling, from a verified token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The OAuth client the token was issued to.
    pub client_id: String,
    /// The user the client acts for; `None` for a client acting for itself
    /// (client credentials).
    pub username: Option<String>,
    /// The scopes the token carries.
    pub scopes: Vec<String>,
    /// The token's grant (`sid`) and id (`jti`): a long-lived response
    /// (an event stream) re-checks them for revocation.
    pub grant_id: String,
    /// See [`Caller::grant_id`].
    pub token_id: String,
    /// When the token expires, seconds since the Unix epoch: a stream
    /// ends then.
    pub expires_secs: i64,
}

impl Caller {
    /// True when the token carries `scope`.
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// For the audit trail: the user, else the client.
    pub fn name(&self) -> String {
        match &self.username {
            Some(u) => format!("{u} via {}", self.client_id),
            None => self.client_id.clone(),
        }
    }
}

/// The scopes a route accepts (any one of them suffices).
pub type Needs = &'static [&'static str];

fn challenge(status: StatusCode, value: String, detail: &str) -> Response {
    let mut r = Problem::new(status, detail).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn quoted(text: &str) -> String {
    text.replace(['"', '\\'], "'")
}

/// The middleware; `needs` comes from the route table in [`crate::router`].
pub async fn require(State((state, needs)): State<(Arc<AppState>, Needs)>, mut req: Request, next: Next) -> Response {
    if !state.auth.enabled {
        return next.run(req).await;
    }
    let realm = r#"Bearer realm="tradelab""#;
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_string());
    let Some(token) = token else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            realm.to_string(),
            "this route needs a bearer token; get one from /oauth/token (see /.well-known/oauth-authorization-server)",
        );
    };
    let invalid = |why: &str| {
        challenge(
            StatusCode::UNAUTHORIZED,
            format!(r#"{realm}, error="invalid_token", error_description="{}""#, quoted(why)),
            &format!("the bearer token was refused: {why}"),
        )
    };
    let claims = match super::oauth::token::verify_access(&state, &token) {
        Ok(c) => c,
        Err(e) => return invalid(&e.to_string()),
    };
    match state.store.access_revoked(&claims.sid, &claims.jti).await {
        Ok(false) => {}
        Ok(true) => return invalid("the token has been revoked"),
        Err(e) => return Problem::from(e).into_response(),
    }
    let scopes: Vec<String> = claims
        .scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !needs.iter().any(|n| scopes.iter().any(|s| s == n)) {
        let need = needs.join(" ");
        return challenge(
            StatusCode::FORBIDDEN,
            format!(r#"{realm}, error="insufficient_scope", scope="{need}""#),
            &format!("the token lacks the scope this route needs: {}", needs.join(" or ")),
        );
    }
    req.extensions_mut().insert(Caller {
        client_id: claims.client_id,
        username: claims.username,
        scopes,
        grant_id: claims.sid,
        token_id: claims.jti,
        expires_secs: claims.exp,
    });
    next.run(req).await
}
