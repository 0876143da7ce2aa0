//! What clients read before they start: the server metadata (RFC 8414)
//! and the public signing keys (RFC 7517).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tradelab_auth::scope;

use crate::state::AppState;
use tradelab_auth::grant;

/// GET /.well-known/oauth-authorization-server.
pub async fn metadata(State(s): State<Arc<AppState>>) -> Response {
    let i = &s.auth.issuer;
    let doc = json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oauth/authorize"),
        "token_endpoint": format!("{i}/oauth/token"),
        "jwks_uri": format!("{i}/oauth/jwks.json"),
        "revocation_endpoint": format!("{i}/oauth/revoke"),
        "introspection_endpoint": format!("{i}/oauth/introspect"),
        "device_authorization_endpoint": format!("{i}/oauth/device_authorization"),
        "scopes_supported": scope::ALL,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [grant::AUTHORIZATION_CODE, grant::REFRESH_TOKEN, grant::CLIENT_CREDENTIALS, grant::DEVICE_CODE],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": true,
    });
    ([(header::CACHE_CONTROL, "max-age=300")], axum::Json(doc)).into_response()
}

/// GET /oauth/jwks.json: every key whose tokens may still be live.
pub async fn jwks(State(s): State<Arc<AppState>>) -> Response {
    let doc = tradelab_auth::jwt::jwks(&s.auth.published_keys());
    // Short caching: a rotation reaches verifiers within a minute.
    ([(header::CACHE_CONTROL, "max-age=60")], axum::Json(doc)).into_response()
}
