//! The web dashboard, served at `/` from the bundle built into the binary
//! (see `build.rs`). A path that names a bundle file gets it; any other
//! path outside the API is a page of the single-page app and gets
//! `index.html`, which routes in the browser.

use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::problem::Problem;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Why the dashboard is not in this binary, if it is not.
pub fn not_built() -> Option<&'static str> {
    NOT_BUILT
}

/// Paths the API and the authorization server own: never answered with
/// the app, so a mistyped API route stays a 404 problem document.
fn api_path(path: &str) -> bool {
    ["/v1/", "/oauth/", "/.well-known/", "/docs", "/openapi.json", "/metrics"]
        .iter()
        .any(|p| path == p.trim_end_matches('/') || path.starts_with(p))
}

/// The policy the app runs under: scripts and connections only to this
/// origin; inline styles because the chart library sets them; no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, bytes)| *bytes)
}

fn page(status: StatusCode, body: &'static [u8], path: &str) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    // Vite names bundle files by their content's hash: they never change.
    // index.html names the current ones, so it must always be revalidated.
    let cache = if path.starts_with("/assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Authorization codes arrive in the callback's URL: never pass it on.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if path.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    r
}

/// The router's fallback: a bundle file, the app's page, or, under the
/// API's paths, a 404 problem document.
pub async fn serve(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if api_path(path) || !(method == Method::GET || method == Method::HEAD) {
        return Problem::not_found("no such route; the API is described at /openapi.json and /docs").into_response();
    }
    if let Some(why) = NOT_BUILT {
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>tradelab</title></head><body>\
             <h1>The dashboard is not built into this server</h1><p>{}</p>\
             <p>Install Node.js 20 or newer with npm and build again (<code>cargo build --release</code>); \
             the API answers meanwhile at <a href=\"/docs\">/docs</a>.</p></body></html>",
            why.replace('&', "&amp;").replace('<', "&lt;")
        );
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response();
    }
    if let Some(bytes) = asset(path) {
        return page(StatusCode::OK, bytes, path);
    }
    // A file name that is not in the bundle is a real 404; a path without
    // one is a page of the app.
    let last = path.rsplit('/').next().unwrap_or("");
    match asset("/index.html") {
        Some(index) if !last.contains('.') => page(StatusCode::OK, index, "/index.html"),
        _ => Problem::not_found(format!("{path} is not a file of the dashboard")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_never_the_app() {
        for p in [
            "/v1/runs",
            "/v1/",
            "/oauth/token",
            "/.well-known/x",
            "/docs",
            "/docs/",
            "/openapi.json",
            "/metrics",
        ] {
            assert!(api_path(p), "{p}");
        }
        for p in [
            "/",
            "/runs",
            "/runs/abc",
            "/assets/index-1.js",
            "/models/a/1",
            "/v1x",
            "/callback",
        ] {
            assert!(!api_path(p), "{p}");
        }
    }

    #[test]
    fn bundle_files_get_their_types() {
        assert_eq!(content_type("/assets/a.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("/index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("/assets/a.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("/x"), "application/octet-stream");
    }
}
