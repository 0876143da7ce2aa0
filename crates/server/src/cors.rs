//! CORS for the browser dashboard (a public client using PKCE): only the
//! origins listed in `auth.cors_origins`, exactly; only the API, the
//! token, revocation and discovery endpoints (never the login pages);
//! no cookies across origins (tokens travel in the Authorization header).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::AppState;

fn shared(path: &str) -> bool {
    path.starts_with("/v1/")
        || matches!(
            path,
            "/oauth/token" | "/oauth/revoke" | "/oauth/jwks.json" | "/.well-known/oauth-authorization-server"
        )
}

/// The middleware: answers preflights itself (204 for an allowed origin,
/// else 403) and adds the CORS headers for origins listed in
/// `auth.cors_origins` on the shared paths.
pub async fn cors(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let allowed = origin
        .as_deref()
        .filter(|o| shared(req.uri().path()) && state.settings.auth.cors_origins.iter().any(|a| a == o))
        .map(str::to_string);
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        // Answered here: a preflight carries no token by design.
        if allowed.is_some() {
            StatusCode::NO_CONTENT.into_response()
        } else {
            StatusCode::FORBIDDEN.into_response()
        }
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    if origin.is_some() {
        h.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let Some(o) = allowed.and_then(|o| HeaderValue::from_str(&o).ok()) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        if preflight {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        } else {
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("www-authenticate, retry-after"),
            );
        }
    }
    response
}
