//! The authorization and resource servers in process: every flow, and
//! every refusal the issue lists, each of which would let an attacker in
//! if it broke. The same flows run against a real server driven by
//! Python's authlib in `tests/oauth.rs`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;
use tradelab_app::Settings;
use tradelab_auth::jwt::{AccessClaims, SigningKey};
use tradelab_auth::sealed::KeyEncryptionKey;
use tradelab_auth::{password, pkce, secret};
use tradelab_store::oauth::ClientRecord;
use tradelab_store::Store;

use super::oauth::AuthServer;
use super::state::AppState;
use tradelab_app::auth_setup;
use tradelab_core::time::now_secs;

const ISSUER: &str = "http://tradelab.test";
const WEB_REDIRECT: &str = "https://app.example/cb";
const SERVICE_SECRET: &str = "tls_service-secret-for-tests-only";
/// The secret of `api`, a confidential client marked as a resource server.
const RESOURCE_SECRET: &str = "tls_resource-server-secret-for-tests";

struct Fixture {
    app: Router,
    state: Arc<AppState>,
    store: Store,
    kek: KeyEncryptionKey,
    _dir: tempfile::TempDir,
}

/// A server with auth on; users ada (researcher), vic (viewer), tmp (one-
/// time password); clients web (public, PKCE), svc (confidential,
/// client credentials, data:read) and the CLI's.
async fn fixture_with(settings: Settings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    let store = Store::open(&url).await.unwrap();
    let queue = tradelab_app::jobs::queue::Queue::open(&url).await.unwrap();
    let kek = KeyEncryptionKey::generate();
    let (keys, _) = auth_setup::load_keys(&store, &settings.auth, &kek).await.unwrap();
    let auth = Arc::new(AuthServer::new(true, ISSUER.into(), settings.auth.clone(), keys));
    for (name, role, pw, temporary) in [
        ("ada", "researcher", "ada-password-123", false),
        ("vic", "viewer", "vic-password-123", false),
        ("tmp", "researcher", "one-time-pass-1", true),
    ] {
        store
            .create_user(name, &password::hash_password(pw), role, temporary)
            .await
            .unwrap();
    }
    auth_setup::ensure_cli_client(&store).await.unwrap();
    auth_setup::ensure_dashboard_client(&store, ISSUER).await.unwrap();
    let client = |id: &str, secret: Option<&str>, redirects: &[&str], grants: &[&str], scopes: &str| ClientRecord {
        client_id: id.into(),
        name: format!("{id} app"),
        secret_hash: secret.map(secret::hash_secret),
        redirect_uris: redirects.iter().map(|s| s.to_string()).collect(),
        grant_types: grants.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.into(),
        resource_server: false,
        created_ms: 0,
    };
    store
        .create_client(&client(
            "web",
            None,
            &[WEB_REDIRECT],
            &["authorization_code", "refresh_token"],
            &tradelab_auth::scope::ALL.join(" "),
        ))
        .await
        .unwrap();
    store
        .create_client(&client(
            "svc",
            Some(SERVICE_SECRET),
            &[],
            &["client_credentials"],
            "data:read",
        ))
        .await
        .unwrap();
    store
        .create_client(&ClientRecord {
            resource_server: true,
            ..client("api", Some(RESOURCE_SECRET), &[], &["client_credentials"], "data:read")
        })
        .await
        .unwrap();
    let state = Arc::new(AppState::new(store.clone(), queue, settings, auth));
    Fixture {
        app: super::router(state.clone(), Duration::from_secs(30)),
        state,
        store,
        kek,
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_with(Settings::default()).await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    fn www_authenticate(&self) -> String {
        self.headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// The hidden inputs of the page's form.
    fn hidden(&self) -> Vec<(String, String)> {
        let unescape = |t: &str| {
            t.replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        };
        self.body
            .split(r#"<input type="hidden" name=""#)
            .skip(1)
            .map(|rest| {
                let (name, rest) = rest.split_once('"').unwrap();
                let value = rest.split_once(r#"value=""#).unwrap().1.split_once('"').unwrap().0;
                (unescape(name), unescape(value))
            })
            .collect()
    }
}

/// A browser: keeps cookies between requests.
struct Browser<'a> {
    app: &'a Router,
    cookies: HashMap<String, String>,
    /// The address requests come from (rate limits key on it).
    from: Option<std::net::SocketAddr>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a Router) -> Browser<'a> {
        Browser {
            app,
            cookies: HashMap::new(),
            from: None,
        }
    }

    /// A browser on another machine.
    fn at(app: &'a Router, ip: &str) -> Browser<'a> {
        Browser {
            from: Some(std::net::SocketAddr::new(ip.parse().unwrap(), 40_000)),
            ..Browser::new(app)
        }
    }

    async fn send(&mut self, method: &str, uri: &str, form: Option<&[(String, String)]>) -> Answer {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(addr) = self.from {
            req = req.extension(axum::extract::ConnectInfo(addr));
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let body = match form {
            Some(pairs) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let mut s = form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    s.append_pair(k, v);
                }
                Body::from(s.finish())
            }
            None => Body::empty(),
        };
        let answer = send(self.app, req.body(body).unwrap()).await;
        for c in answer.headers.get_all(header::SET_COOKIE) {
            let (pair, _) = c.to_str().unwrap().split_once(';').unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.into(), v.into());
        }
        answer
    }

    /// Fills the page's form: its hidden fields plus `extra`.
    async fn submit(&mut self, page: &Answer, action: &str, extra: &[(&str, &str)]) -> Answer {
        let mut fields = page.hidden();
        fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self.send("POST", action, Some(&fields)).await
    }
}

async fn send(app: &Router, req: Request<Body>) -> Answer {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn post_form(app: &Router, uri: &str, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> Answer {
    post_form_from(app, None, uri, pairs, basic).await
}

/// [`post_form`] from the address `ip`.
async fn post_form_from(
    app: &Router,
    ip: Option<&str>,
    uri: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Answer {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(ip) = ip {
        req = req.extension(axum::extract::ConnectInfo(std::net::SocketAddr::new(
            ip.parse().unwrap(),
            40_000,
        )));
    }
    if let Some((id, secret)) = basic {
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        req = req.header(header::AUTHORIZATION, format!("Basic {encoded}"));
    }
    send(app, req.body(Body::from(s.finish())).unwrap()).await
}

/// A JSON request with a bearer token.
async fn json_with(app: &Router, method: &str, uri: &str, body: Option<serde_json::Value>, token: &str) -> Answer {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json");
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    send(app, req.body(body).unwrap()).await
}

async fn get_with(app: &Router, uri: &str, token: Option<&str>) -> Answer {
    let mut req = Request::builder().uri(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    send(app, req.body(Body::empty()).unwrap()).await
}

fn authorize_uri(client: &str, redirect: &str, challenge: Option<&str>, extra: &str) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "st-1");
    if let Some(c) = challenge {
        s.append_pair("code_challenge", c)
            .append_pair("code_challenge_method", "S256");
    }
    format!("/oauth/authorize?{}{extra}", s.finish())
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Signs in (if this browser is not yet) and allows: the code.
async fn code_for(b: &mut Browser<'_>, user: &str, pw: &str, verifier: &str, extra: &str) -> String {
    let mut page = b
        .send(
            "GET",
            &authorize_uri("web", WEB_REDIRECT, Some(&pkce::challenge_of(verifier)), extra),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    if page.body.contains("Sign in to continue") {
        page = b
            .submit(
                &page,
                "/oauth/authorize",
                &[("username", user), ("password", pw), ("action", "login")],
            )
            .await;
    }
    assert!(page.body.contains("asks to:"), "consent page expected: {}", page.body);
    let done = b.submit(&page, "/oauth/consent", &[("decision", "allow")]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let location = done.location();
    assert!(location.starts_with(WEB_REDIRECT), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(query_param(&location, "iss").as_deref(), Some(ISSUER));
    query_param(&location, "code").unwrap()
}

async fn redeem(app: &Router, code: &str, verifier: Option<&str>, redirect: &str) -> Answer {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect),
        ("client_id", "web"),
    ];
    if let Some(v) = verifier {
        pairs.push(("code_verifier", v));
    }
    post_form(app, "/oauth/token", &pairs, None).await
}

fn verifier(n: u8) -> String {
    format!("{}{n:02}", "v".repeat(45))
}

#[tokio::test]
async fn every_api_route_refuses_a_request_without_a_token() {
    use utoipa::OpenApi;
    let f = fixture().await;
    let doc = super::ApiDoc::openapi();
    let mut checked = 0;
    for (path, item) in &doc.paths.paths {
        let uri = path
            .replace("{name}", "tiny")
            .replace("{version}", "1")
            .replace("{id}", "x")
            .replace("{instrument}", "acme");
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ] {
            if op.is_none() {
                continue;
            }
            let req = Request::builder().method(method).uri(&uri).body(Body::empty()).unwrap();
            let a = send(&f.app, req).await;
            if path == "/v1/health" {
                assert_eq!(a.status, StatusCode::OK);
                continue;
            }
            assert_eq!(
                a.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} answered without a token"
            );
            assert_eq!(a.www_authenticate(), r#"Bearer realm="tradelab""#, "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} routes checked");
}

#[tokio::test]
async fn each_route_enforces_the_scopes_its_documentation_names() {
    use utoipa::OpenApi;
    let f = fixture().await;
    let doc = super::ApiDoc::openapi();
    let mut checked = 0;
    for (path, item) in &doc.paths.paths {
        for (method, op) in [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ] {
            let Some(op) = op else { continue };
            if path == "/v1/health" {
                assert!(op.security.is_none());
                continue;
            }
            let requirements: Vec<serde_json::Value> = op
                .security
                .as_ref()
                .unwrap_or_else(|| panic!("{method} {path} documents no scope"))
                .iter()
                .map(|r| serde_json::to_value(r).unwrap())
                .collect();
            // A pasted bearer token is offered beside the OAuth flows.
            assert!(
                requirements.iter().any(|r| r.get("bearer").is_some()),
                "{method} {path} offers no bearer token"
            );
            let documented: Vec<String> = requirements
                .iter()
                .filter_map(|r| r["oauth2"][0].as_str().map(String::from))
                .collect();
            assert!(!documented.is_empty(), "{method} {path} documents no scope");
            let uri = path
                .replace("{name}", "tiny")
                .replace("{version}", "1")
                .replace("{id}", "x")
                .replace("{instrument}", "acme")
                // Names nobody has: a route's guard is what is checked, and
                // an admin call that gets past it must change nothing.
                .replace("{username}", "nobody")
                .replace("{client_id}", "nobody");
            let call = |scope: String| {
                let app = f.app.clone();
                let uri = uri.clone();
                let f = &f;
                async move {
                    let token = minted(f, &scope, |_| {}).await;
                    let req = Request::builder()
                        .method(method)
                        .uri(&uri)
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .body(Body::empty())
                        .unwrap();
                    send(&app, req).await.status
                }
            };
            // Every other scope together is not enough...
            let others: Vec<&str> = tradelab_auth::scope::ALL
                .iter()
                .copied()
                .filter(|s| !documented.iter().any(|d| d == s))
                .collect();
            assert_eq!(
                call(others.join(" ")).await,
                StatusCode::FORBIDDEN,
                "{method} {path} without {documented:?}"
            );
            // ...and each documented one alone gets past the guard.
            for scope in &documented {
                let status = call(scope.clone()).await;
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{method} {path} with {scope}: {status}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} routes checked");
    let schemes = doc.components.unwrap().security_schemes;
    let scheme = serde_json::to_value(&schemes["oauth2"]).unwrap();
    assert_eq!(scheme["flows"]["authorizationCode"]["tokenUrl"], "/oauth/token");
    let bearer = serde_json::to_value(&schemes["bearer"]).unwrap();
    assert_eq!(
        (bearer["type"].as_str(), bearer["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
}

/// A token signed by the server's key with `edit` applied to its claims,
/// from a real (live) grant.
async fn minted(f: &Fixture, scope: &str, edit: impl FnOnce(&mut AccessClaims)) -> String {
    let grant = f.store.create_grant("svc", None, scope).await.unwrap();
    let now = now_secs();
    let mut claims = AccessClaims {
        iss: ISSUER.into(),
        sub: "svc".into(),
        aud: "tradelab-api".into(),
        exp: now + 300,
        iat: now,
        jti: secret::new_secret(""),
        client_id: "svc".into(),
        scope: scope.into(),
        sid: grant,
        username: None,
    };
    edit(&mut claims);
    f.state.auth.keys.read().unwrap().signing.sign(&claims)
}

#[tokio::test]
async fn tokens_are_checked_for_signature_issuer_audience_expiry_revocation_and_scope() {
    let f = fixture().await;
    let good = minted(&f, "data:read", |_| {}).await;
    assert_eq!(get_with(&f.app, "/v1/runs", Some(&good)).await.status, StatusCode::OK);
    // The right token without the route's scope: 403, naming the scope.
    let a = get_with(&f.app, "/metrics", Some(&good)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        a.www_authenticate(),
        r#"Bearer realm="tradelab", error="insufficient_scope", scope="admin""#
    );
    let admin = minted(&f, "admin", |_| {}).await;
    assert_eq!(get_with(&f.app, "/metrics", Some(&admin)).await.status, StatusCode::OK);

    let refused = |a: &Answer, why: &str| {
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{why}: {}", a.body);
        assert!(
            a.www_authenticate().contains(r#"error="invalid_token""#),
            "{why}: {}",
            a.www_authenticate()
        );
    };
    // Expired beyond the 30 s skew; inside it still accepted.
    let expired = minted(&f, "data:read", |c| c.exp = now_secs() - 31).await;
    refused(&get_with(&f.app, "/v1/runs", Some(&expired)).await, "expired");
    let in_skew = minted(&f, "data:read", |c| c.exp = now_secs() - 10).await;
    assert_eq!(
        get_with(&f.app, "/v1/runs", Some(&in_skew)).await.status,
        StatusCode::OK
    );
    let audience = minted(&f, "data:read", |c| c.aud = "another-api".into()).await;
    refused(&get_with(&f.app, "/v1/runs", Some(&audience)).await, "audience");
    let issuer = minted(&f, "data:read", |c| c.iss = "https://evil.example".into()).await;
    refused(&get_with(&f.app, "/v1/runs", Some(&issuer)).await, "issuer");
    // Tampered: the scope raised after signing.
    let parts: Vec<&str> = good.split('.').collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = "admin".into();
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
    refused(&get_with(&f.app, "/metrics", Some(&tampered)).await, "tampered");
    // alg none, with the signature dropped.
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"at+jwt"}"#),
        b64.encode(claims.to_string())
    );
    refused(&get_with(&f.app, "/metrics", Some(&none)).await, "alg none");
    // Signed by a key the server does not publish.
    let (stranger, _) = SigningKey::generate();
    let mut c: AccessClaims = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    c.scope = "admin".into();
    refused(
        &get_with(&f.app, "/metrics", Some(&stranger.sign(&c))).await,
        "unknown key",
    );
    // Revoked: its grant revoked, or the token alone.
    let grant = f.store.create_grant("svc", None, "data:read").await.unwrap();
    let g = grant.clone();
    let family = minted(&f, "data:read", move |c| c.sid = g).await;
    f.store.revoke_grant(&grant, "test").await.unwrap();
    refused(&get_with(&f.app, "/v1/runs", Some(&family)).await, "revoked grant");
    refused(&get_with(&f.app, "/v1/runs", Some("not-a-jwt")).await, "garbage");
    let a = send(
        &f.app,
        Request::builder()
            .uri("/v1/runs")
            .header(header::AUTHORIZATION, format!("Basic {good}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        a.www_authenticate(),
        r#"Bearer realm="tradelab""#,
        "a non-bearer scheme is no token"
    );
}

#[tokio::test]
async fn authorization_code_with_pkce_and_each_refusal() {
    let f = fixture().await;
    let mut b = Browser::new(&f.app);
    // Wrong verifier, missing verifier, other redirect URI: each refused,
    // and each spends its code.
    let code = code_for(&mut b, "ada", "ada-password-123", &verifier(1), "").await;
    let a = redeem(&f.app, &code, Some(&verifier(2)), WEB_REDIRECT).await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{}",
        a.body
    );
    let code = code_for(&mut b, "ada", "", &verifier(1), "").await;
    let a = redeem(&f.app, &code, None, WEB_REDIRECT).await;
    assert_eq!(a.json()["error"], "invalid_grant");
    let code = code_for(&mut b, "ada", "", &verifier(1), "").await;
    let a = redeem(&f.app, &code, Some(&verifier(1)), "https://app.example/other").await;
    assert_eq!(a.json()["error"], "invalid_grant");
    // The good exchange.
    let code = code_for(&mut b, "ada", "", &verifier(3), "&scope=data%3Aread%20train").await;
    let a = redeem(&f.app, &code, Some(&verifier(3)), WEB_REDIRECT).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
    let tokens = a.json();
    assert_eq!(tokens["scope"], "data:read train");
    assert_eq!(tokens["token_type"], "Bearer");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(get_with(&f.app, "/v1/runs", Some(&access)).await.status, StatusCode::OK);
    // The code replayed: refused, and what it bought is revoked.
    let a = redeem(&f.app, &code, Some(&verifier(3)), WEB_REDIRECT).await;
    assert_eq!(a.json()["error"], "invalid_grant");
    assert!(a.json()["error_description"].as_str().unwrap().contains("revoked"));
    assert_eq!(
        get_with(&f.app, "/v1/runs", Some(&access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let a = post_form(
        &f.app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(a.json()["error"], "invalid_grant");

    // Requests refused at the authorization endpoint.
    let challenge = pkce::challenge_of(&verifier(4));
    let unregistered = b
        .send(
            "GET",
            &authorize_uri("web", "https://evil.example/cb", Some(&challenge), ""),
            None,
        )
        .await;
    assert_eq!(unregistered.status, StatusCode::BAD_REQUEST);
    assert!(
        unregistered.location().is_empty(),
        "never redirect to an unregistered URI"
    );
    let unknown = b
        .send(
            "GET",
            &authorize_uri("nobody", WEB_REDIRECT, Some(&challenge), ""),
            None,
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.location().is_empty()),
        (StatusCode::BAD_REQUEST, true)
    );
    let no_pkce = b.send("GET", &authorize_uri("web", WEB_REDIRECT, None, ""), None).await;
    assert_eq!(
        query_param(&no_pkce.location(), "error").as_deref(),
        Some("invalid_request")
    );
    let plain = b
        .send(
            "GET",
            &format!(
                "{}&code_challenge={challenge}&code_challenge_method=plain",
                authorize_uri("web", WEB_REDIRECT, None, "")
            ),
            None,
        )
        .await;
    assert_eq!(
        query_param(&plain.location(), "error").as_deref(),
        Some("invalid_request")
    );
    let twice = b
        .send(
            "GET",
            &format!(
                "{}&state=again",
                authorize_uri("web", WEB_REDIRECT, Some(&challenge), "")
            ),
            None,
        )
        .await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST, "a repeated parameter is refused");
    // ada is a researcher: admin is not hers to grant.
    let admin = b
        .send(
            "GET",
            &authorize_uri("web", WEB_REDIRECT, Some(&challenge), "&scope=admin"),
            None,
        )
        .await;
    assert_eq!(
        query_param(&admin.location(), "error").as_deref(),
        Some("invalid_scope")
    );
    // Deny.
    let page = b
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    let denied = b.submit(&page, "/oauth/consent", &[("decision", "deny")]).await;
    assert_eq!(
        query_param(&denied.location(), "error").as_deref(),
        Some("access_denied")
    );

    // A form without the CSRF token (another site posting it) is refused.
    let mut fresh = Browser::new(&f.app);
    let page = fresh
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    let mut fields: Vec<(String, String)> = page.hidden().into_iter().filter(|(k, _)| k != "csrf").collect();
    fields.extend([
        ("username".into(), "ada".into()),
        ("password".into(), "ada-password-123".into()),
    ]);
    assert_eq!(
        fresh.send("POST", "/oauth/authorize", Some(&fields)).await.status,
        StatusCode::FORBIDDEN
    );
    fresh.cookies.clear();
    let page2 = fresh
        .submit(
            &page,
            "/oauth/authorize",
            &[("username", "ada"), ("password", "ada-password-123")],
        )
        .await;
    assert_eq!(page2.status, StatusCode::FORBIDDEN, "no CSRF cookie");
    // Issue 19 finding 20: a cookie planted with the same value as the
    // form's field (the old check accepted any such pair) is refused ...
    let mut planted = Browser::new(&f.app);
    let nonce = "p".repeat(43);
    planted.cookies.insert("tradelab_csrf".into(), nonce.clone());
    let mut fields: Vec<(String, String)> = page
        .hidden()
        .into_iter()
        .map(|(k, v)| if k == "csrf" { (k, nonce.clone()) } else { (k, v) })
        .collect();
    fields.extend([
        ("username".into(), "ada".into()),
        ("password".into(), "ada-password-123".into()),
    ]);
    assert_eq!(
        planted.send("POST", "/oauth/authorize", Some(&fields)).await.status,
        StatusCode::FORBIDDEN
    );
    // ... and so is a token lifted from another browser's session: a
    // signed-in browser's consent form, replayed with the victim's cookies.
    let mut attacker = Browser::new(&f.app);
    let consent_page = {
        let login = attacker
            .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
            .await;
        attacker
            .submit(
                &login,
                "/oauth/authorize",
                &[("username", "vic"), ("password", "vic-password-123")],
            )
            .await
    };
    assert!(consent_page.body.contains("asks to:"), "{}", consent_page.body);
    let mut victim = Browser::new(&f.app);
    victim
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    victim
        .cookies
        .insert("tradelab_csrf".into(), attacker.cookies["tradelab_csrf"].clone());
    let forged = victim
        .submit(&consent_page, "/oauth/consent", &[("decision", "allow")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    let genuine = attacker
        .submit(&consent_page, "/oauth/consent", &[("decision", "allow")])
        .await;
    assert_eq!(genuine.status, StatusCode::SEE_OTHER, "{}", genuine.body);
    // Login pages cannot be framed or cached.
    assert_eq!(page.headers.get(header::X_FRAME_OPTIONS).unwrap(), "DENY");
    assert_eq!(page.headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let f = fixture().await;
    let mut b = Browser::new(&f.app);
    let code = code_for(&mut b, "ada", "ada-password-123", &verifier(1), "").await;
    let first = redeem(&f.app, &code, Some(&verifier(1)), WEB_REDIRECT).await.json();
    let refresh = |token: String, scope: Option<&'static str>| {
        let app = f.app.clone();
        async move {
            let mut pairs = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", "web"),
            ];
            if let Some(s) = scope {
                pairs.push(("scope", s));
            }
            post_form(&app, "/oauth/token", &pairs, None).await
        }
    };
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let second = refresh(r1.clone(), Some("data:read")).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let second = second.json();
    assert_eq!(second["scope"], "data:read", "a refresh may narrow the scope");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "refresh tokens rotate");
    assert_eq!(
        refresh(r2.clone(), Some("admin")).await.json()["error"],
        "invalid_scope"
    );
    // A refused refresh leaves the token usable (else the client's next
    // refresh would look like a replay and revoke the sign-in).
    let a = refresh(r2.clone(), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let code = code_for(&mut b, "ada", "", &verifier(2), "").await;
    let tokens = redeem(&f.app, &code, Some(&verifier(2)), WEB_REDIRECT).await.json();
    let old = tokens["refresh_token"].as_str().unwrap().to_string();
    let newer = refresh(old.clone(), None).await.json();
    let newest_refresh = newer["refresh_token"].as_str().unwrap().to_string();
    let newest_access = newer["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        get_with(&f.app, "/v1/runs", Some(&newest_access)).await.status,
        StatusCode::OK
    );
    // The old one replayed (a thief, or the client after a thief): refused,
    // and the family dies, the newest tokens with it.
    let replay = refresh(old, None).await;
    assert_eq!(replay.json()["error"], "invalid_grant");
    assert!(replay.json()["error_description"].as_str().unwrap().contains("revoked"));
    assert_eq!(refresh(newest_refresh, None).await.json()["error"], "invalid_grant");
    assert_eq!(
        get_with(&f.app, "/v1/runs", Some(&newest_access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Another client cannot use web's refresh token.
    let code = code_for(&mut b, "ada", "", &verifier(3), "").await;
    let t = redeem(&f.app, &code, Some(&verifier(3)), WEB_REDIRECT).await.json();
    let a = post_form(
        &f.app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", "tradelab-cli"),
        ],
        None,
    )
    .await;
    assert_eq!(a.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn logins_are_rate_limited_and_disabled_users_are_refused() {
    let f = fixture().await;
    let mut b = Browser::new(&f.app);
    let challenge = pkce::challenge_of(&verifier(1));
    let page = b
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    for i in 0..5 {
        let a = b
            .submit(
                &page,
                "/oauth/authorize",
                &[("username", "ada"), ("password", &format!("guess-{i}-xxxxxx"))],
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
        assert!(a.body.contains("Wrong user name or password"));
    }
    // Past the limit even the right password is refused, with Retry-After.
    let a = b
        .submit(
            &page,
            "/oauth/authorize",
            &[("username", "ada"), ("password", "ada-password-123")],
        )
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(a.headers.get(header::RETRY_AFTER).is_some());
    assert!(!a.body.contains("asks to:"));
    // Issue 19 finding 10: the lockout is the attacker's address's alone;
    // ada signs in from her own machine.
    let mut own = Browser::at(&f.app, "10.0.0.7");
    let page7 = own
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    let a = own
        .submit(
            &page7,
            "/oauth/authorize",
            &[("username", "ada"), ("password", "ada-password-123")],
        )
        .await;
    assert!(a.body.contains("asks to:"), "{}", a.body);
    // Another user is not locked out by ada's attacker.
    let a = b
        .submit(
            &page,
            "/oauth/authorize",
            &[("username", "vic"), ("password", "vic-password-123")],
        )
        .await;
    assert!(a.body.contains("asks to:"), "{}", a.body);
    // vic signs in, gets tokens, is disabled: tokens, refresh and login die.
    let done = b.submit(&a, "/oauth/consent", &[("decision", "allow")]).await;
    let code = query_param(&done.location(), "code").unwrap();
    let tokens = redeem(&f.app, &code, Some(&verifier(1)), WEB_REDIRECT).await.json();
    assert_eq!(
        tokens["scope"], "data:read models:read",
        "a viewer gets a viewer's scopes"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(get_with(&f.app, "/v1/runs", Some(access)).await.status, StatusCode::OK);
    f.store.set_user_disabled("vic", true).await.unwrap();
    assert_eq!(
        get_with(&f.app, "/v1/runs", Some(access)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let a = post_form(
        &f.app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(a.json()["error"], "invalid_grant");
    let mut other = Browser::new(&f.app);
    let page = other
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    let a = other
        .submit(
            &page,
            "/oauth/authorize",
            &[("username", "vic"), ("password", "vic-password-123")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("disabled"));
    // The signed-in browser's session no longer counts either.
    let a = b
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    assert!(a.body.contains("Sign in to continue"));
}

#[tokio::test]
async fn a_one_time_password_must_be_changed_at_first_sign_in() {
    let f = fixture().await;
    let mut b = Browser::new(&f.app);
    let challenge = pkce::challenge_of(&verifier(1));
    let page = b
        .send("GET", &authorize_uri("web", WEB_REDIRECT, Some(&challenge), ""), None)
        .await;
    let change = b
        .submit(
            &page,
            "/oauth/authorize",
            &[("username", "tmp"), ("password", "one-time-pass-1")],
        )
        .await;
    assert!(change.body.contains("Choose a new one"), "{}", change.body);
    // Consent is not reachable before the change.
    let early = b.submit(&change, "/oauth/consent", &[("decision", "allow")]).await;
    assert_eq!(early.status, StatusCode::UNAUTHORIZED);
    for (new, confirm) in [
        ("short", "short"),
        ("a-long-new-password", "a-different-one!"),
        ("one-time-pass-1", "one-time-pass-1"),
    ] {
        let a = b
            .submit(
                &change,
                "/oauth/password",
                &[("new_password", new), ("confirm", confirm)],
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{new}/{confirm}");
    }
    let consent = b
        .submit(
            &change,
            "/oauth/password",
            &[
                ("new_password", "a-long-new-password"),
                ("confirm", "a-long-new-password"),
            ],
        )
        .await;
    assert!(consent.body.contains("asks to:"), "{}", consent.body);
    let user = f.store.user_by_name("tmp").await.unwrap().unwrap();
    assert!(!user.must_change_password);
    assert!(password::verify_password("a-long-new-password", &user.password_hash));
}

/// The dashboard is first-party: signed in (and past a one-time
/// password's change), the browser goes straight back to it with a code,
/// no consent page; its token carries the role's scopes, which `/v1/me`
/// reports and the admin routes enforce.
#[tokio::test]
async fn the_dashboard_signs_in_without_a_consent_page_and_learns_its_role() {
    use tradelab_auth::grant::DASHBOARD_CLIENT_ID;
    let f = fixture().await;
    let callback = format!("{ISSUER}/callback");
    for (user, pw, new_pw) in [
        ("vic", "vic-password-123", None),
        ("tmp", "one-time-pass-1", Some("a-long-new-password")),
    ] {
        let v = verifier(7);
        let mut b = Browser::new(&f.app);
        let login = b
            .send(
                "GET",
                &authorize_uri(DASHBOARD_CLIENT_ID, &callback, Some(&pkce::challenge_of(&v)), ""),
                None,
            )
            .await;
        assert!(login.body.contains("Sign in to continue"), "{}", login.body);
        let mut done = b
            .submit(
                &login,
                "/oauth/authorize",
                &[("username", user), ("password", pw), ("action", "login")],
            )
            .await;
        if let Some(new_pw) = new_pw {
            assert!(done.body.contains("Choose a new one"), "{}", done.body);
            done = b
                .submit(
                    &done,
                    "/oauth/password",
                    &[("new_password", new_pw), ("confirm", new_pw)],
                )
                .await;
        }
        assert_eq!(
            done.status,
            StatusCode::SEE_OTHER,
            "no consent page for {user}: {}",
            done.body
        );
        let location = done.location();
        assert!(location.starts_with(&callback), "{location}");
        let code = query_param(&location, "code").unwrap();
        let token = post_form(
            &f.app,
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &callback),
                ("client_id", DASHBOARD_CLIENT_ID),
                ("code_verifier", &v),
            ],
            None,
        )
        .await;
        assert_eq!(token.status, StatusCode::OK, "{}", token.body);
        let access = token.json()["access_token"].as_str().unwrap().to_string();
        let me = get_with(&f.app, "/v1/me", Some(&access)).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
        let me = me.json();
        assert_eq!(me["username"], user);
        let role = if user == "vic" { "viewer" } else { "researcher" };
        assert_eq!(me["role"], role);
        let scopes: Vec<&str> = me["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(!scopes.contains(&"admin"), "{scopes:?}");
        assert_eq!(scopes.contains(&"train"), role == "researcher", "{scopes:?}");
        for admin_only in ["/v1/admin/users", "/v1/admin/clients"] {
            assert_eq!(
                get_with(&f.app, admin_only, Some(&access)).await.status,
                StatusCode::FORBIDDEN
            );
        }
    }
    // Another client still asks for consent.
    let mut b = Browser::new(&f.app);
    let v = verifier(8);
    let login = b
        .send(
            "GET",
            &authorize_uri("web", WEB_REDIRECT, Some(&pkce::challenge_of(&v)), ""),
            None,
        )
        .await;
    let consent = b
        .submit(
            &login,
            "/oauth/authorize",
            &[
                ("username", "vic"),
                ("password", "vic-password-123"),
                ("action", "login"),
            ],
        )
        .await;
    assert!(consent.body.contains("asks to:"), "{}", consent.body);
}

/// The administrator's listings: every user with role and state, every
/// client, public or not; never a password or secret hash.
#[tokio::test]
async fn the_admin_lists_users_and_clients_without_their_hashes() {
    let f = fixture().await;
    let admin = minted(&f, "admin", |_| {}).await;
    let users = get_with(&f.app, "/v1/admin/users", Some(&admin)).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.body);
    let listed: Vec<(String, String, bool)> = users
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap().to_string(),
                u["role"].as_str().unwrap().to_string(),
                u["must_change_password"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("ada".to_string(), "researcher".to_string(), false),
            ("tmp".into(), "researcher".into(), true),
            ("vic".into(), "viewer".into(), false)
        ]
    );
    assert!(!users.body.contains("argon2"), "{}", users.body);
    let clients = get_with(&f.app, "/v1/admin/clients", Some(&admin)).await;
    assert_eq!(clients.status, StatusCode::OK, "{}", clients.body);
    let public: Vec<(String, bool)> = clients
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client_id"].as_str().unwrap().to_string(),
                c["public"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        public,
        [
            ("api".to_string(), false),
            ("svc".into(), false),
            ("tradelab-cli".into(), true),
            ("tradelab-dashboard".into(), true),
            ("web".into(), true)
        ]
    );
    assert!(!clients.body.contains("hash"), "{}", clients.body);
    // A client acting for itself is named as one.
    let me = get_with(&f.app, "/v1/me", Some(&admin)).await.json();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("svc"), Some("client"))
    );
}

/// The administrator adds a user (who gets a one-time password), disables
/// and enables users (never the last administrator) and removes clients
/// (never the dashboard's own), with every refusal named.
#[tokio::test]
async fn the_admin_adds_and_disables_users_and_removes_clients() {
    use serde_json::json;
    let f = fixture().await;
    let admin = minted(&f, "admin", |_| {}).await;
    let added = json_with(
        &f.app,
        "POST",
        "/v1/admin/users",
        Some(json!({"username": "neo", "role": "viewer"})),
        &admin,
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let added = added.json();
    assert_eq!(
        (
            added["user"]["role"].as_str(),
            added["user"]["must_change_password"].as_bool()
        ),
        (Some("viewer"), Some(true))
    );
    let one_time = added["one_time_password"].as_str().unwrap();
    assert!(one_time.len() >= 12, "{added}");
    let stored = f.store.user_by_name("neo").await.unwrap().unwrap();
    assert!(
        tradelab_auth::password::verify_password(one_time, &stored.password_hash),
        "the password shown is the one stored"
    );
    for (body, needle) in [
        (json!({"username": "neo", "role": "viewer"}), "already exists"),
        (
            json!({"username": "two words", "role": "viewer"}),
            "not a valid user name",
        ),
        (json!({"username": "zed", "role": "god"}), "god"),
    ] {
        let r = json_with(&f.app, "POST", "/v1/admin/users", Some(body.clone()), &admin).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", r.body);
        assert!(r.body.contains(needle), "{body}: {}", r.body);
    }
    let r = json_with(
        &f.app,
        "POST",
        "/v1/admin/users",
        Some(json!({"username": "zed", "role": "viewer", "password": "x"})),
        &admin,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an unknown field is refused: {}",
        r.body
    );

    // Disabling and enabling.
    let off = json_with(
        &f.app,
        "PUT",
        "/v1/admin/users/vic/enabled",
        Some(json!({"enabled": false})),
        &admin,
    )
    .await;
    assert_eq!(
        (off.status, off.json()["enabled"].as_bool()),
        (StatusCode::OK, Some(false)),
        "{}",
        off.body
    );
    assert!(f
        .store
        .user_by_name("vic")
        .await
        .unwrap()
        .unwrap()
        .disabled_ms
        .is_some());
    let on = json_with(
        &f.app,
        "PUT",
        "/v1/admin/users/vic/enabled",
        Some(json!({"enabled": true})),
        &admin,
    )
    .await;
    assert_eq!(on.json()["enabled"].as_bool(), Some(true), "{}", on.body);
    let r = json_with(
        &f.app,
        "PUT",
        "/v1/admin/users/nobody/enabled",
        Some(json!({"enabled": false})),
        &admin,
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // The only administrator stays enabled.
    json_with(
        &f.app,
        "POST",
        "/v1/admin/users",
        Some(json!({"username": "root", "role": "admin"})),
        &admin,
    )
    .await;
    let r = json_with(
        &f.app,
        "PUT",
        "/v1/admin/users/root/enabled",
        Some(json!({"enabled": false})),
        &admin,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("last enabled administrator"), "{}", r.body);

    // Removing clients.
    let r = json_with(&f.app, "DELETE", "/v1/admin/clients/web", None, &admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(f.store.client("web").await.unwrap().is_none());
    let r = json_with(&f.app, "DELETE", "/v1/admin/clients/web", None, &admin).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = json_with(
        &f.app,
        "DELETE",
        &format!("/v1/admin/clients/{}", tradelab_auth::grant::DASHBOARD_CLIENT_ID),
        None,
        &admin,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.body.contains("dashboard"), "{}", r.body);
}

/// Issue 19 finding 16: a signed-in session alone cannot change the
/// password, and a change ends every grant and other session.
#[tokio::test]
async fn a_password_change_needs_the_current_password_and_revokes_every_grant() {
    let f = fixture().await;
    let mut b = Browser::new(&f.app);
    let code = code_for(&mut b, "ada", "ada-password-123", &verifier(1), "").await;
    let tokens = redeem(&f.app, &code, Some(&verifier(1)), WEB_REDIRECT).await.json();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let mut elsewhere = Browser::new(&f.app);
    code_for(&mut elsewhere, "ada", "ada-password-123", &verifier(2), "").await;
    let uri = authorize_uri("web", WEB_REDIRECT, Some(&pkce::challenge_of(&verifier(3))), "");
    let page = b.send("GET", &uri, None).await;
    assert!(page.body.contains("asks to:"), "{}", page.body);
    let change = |current: Option<&'static str>| {
        let mut fields = vec![
            ("new_password", "a-brand-new-password"),
            ("confirm", "a-brand-new-password"),
        ];
        fields.extend(current.map(|c| ("current_password", c)));
        fields
    };
    let hash = || async { f.store.user_by_name("ada").await.unwrap().unwrap().password_hash };
    for current in [None, Some("a-wrong-guess-123")] {
        let a = b.submit(&page, "/oauth/password", &change(current)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{current:?}: {}", a.body);
        assert!(a.body.contains("Current password"), "{}", a.body);
        assert!(password::verify_password("ada-password-123", &hash().await));
    }
    assert_eq!(get_with(&f.app, "/v1/runs", Some(&access)).await.status, StatusCode::OK);

    let a = b
        .submit(&page, "/oauth/password", &change(Some("ada-password-123")))
        .await;
    assert!(a.body.contains("asks to:"), "{}", a.body);
    assert!(password::verify_password("a-brand-new-password", &hash().await));
    assert_eq!(
        get_with(&f.app, "/v1/runs", Some(&access)).await.status,
        StatusCode::UNAUTHORIZED,
        "tokens from before the change are revoked"
    );
    let a = post_form(
        &f.app,
        "/oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "web"),
        ],
        None,
    )
    .await;
    assert_eq!(a.json()["error"], "invalid_grant");
    let a = elsewhere.send("GET", &uri, None).await;
    assert!(
        a.body.contains("Sign in to continue"),
        "the other browser is signed out"
    );
}

#[tokio::test]
async fn client_credentials_introspection_and_revocation() {
    let f = fixture().await;
    let token = |app: Router, basic: Option<(&'static str, &'static str)>, scope: &'static str| async move {
        post_form(
            &app,
            "/oauth/token",
            &[("grant_type", "client_credentials"), ("scope", scope)],
            basic,
        )
        .await
    };
    let wrong = token(f.app.clone(), Some(("svc", "tls_wrong")), "data:read").await;
    assert_eq!(
        (wrong.status, wrong.json()["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    assert!(wrong.www_authenticate().starts_with("Basic"));
    assert_eq!(
        token(f.app.clone(), Some(("svc", SERVICE_SECRET)), "train")
            .await
            .json()["error"],
        "invalid_scope"
    );
    let ok = token(f.app.clone(), Some(("svc", SERVICE_SECRET)), "data:read").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(
        ok.json().get("refresh_token").is_none(),
        "no refresh token for client credentials"
    );
    let access = ok.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(get_with(&f.app, "/v1/runs", Some(&access)).await.status, StatusCode::OK);
    // A public client cannot use client credentials.
    let a = post_form(
        &f.app,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", "web")],
        None,
    )
    .await;
    assert_eq!(a.json()["error"], "unauthorized_client");

    let introspect = |t: String| {
        let app = f.app.clone();
        async move {
            post_form(
                &app,
                "/oauth/introspect",
                &[("token", &t), ("client_id", "api"), ("client_secret", RESOURCE_SECRET)],
                None,
            )
            .await
            .json()
        }
    };
    let info = introspect(access.clone()).await;
    assert_eq!(
        (info["active"].as_bool(), info["client_id"].as_str()),
        (Some(true), Some("svc"))
    );
    assert_eq!(introspect("junk".into()).await, serde_json::json!({"active": false}));
    let public = post_form(
        &f.app,
        "/oauth/introspect",
        &[("token", &access), ("client_id", "web")],
        None,
    )
    .await;
    assert_eq!(
        public.status,
        StatusCode::UNAUTHORIZED,
        "public clients cannot introspect"
    );
    // Issue 19 finding 15: nor can a confidential client that is not a
    // resource server (it would learn users' names and scopes).
    let other = post_form(
        &f.app,
        "/oauth/introspect",
        &[("token", &access)],
        Some(("svc", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(
        (other.status, other.json()["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("unauthorized_client")),
        "{}",
        other.body
    );
    assert!(other.json().get("active").is_none());
    // Revoked by another client: nothing happens (RFC 7009 §2.1).
    let a = post_form(
        &f.app,
        "/oauth/revoke",
        &[("token", &access), ("client_id", "web")],
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(introspect(access.clone()).await["active"], true);
    // Revoked by its own client: inactive at once.
    let a = post_form(
        &f.app,
        "/oauth/revoke",
        &[("token", &access)],
        Some(("svc", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(introspect(access.clone()).await["active"], false);
    assert_eq!(
        get_with(&f.app, "/v1/runs", Some(&access)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_device_flow_signs_in_a_machine_without_a_browser() {
    let f = fixture().await;
    let start = post_form(
        &f.app,
        "/oauth/device_authorization",
        &[("client_id", "tradelab-cli"), ("scope", "data:read")],
        None,
    )
    .await
    .json();
    let device_code = start["device_code"].as_str().unwrap().to_string();
    let user_code = start["user_code"].as_str().unwrap().to_string();
    assert_eq!(start["verification_uri"], format!("{ISSUER}/oauth/device"));
    let poll = || {
        let app = f.app.clone();
        let code = device_code.clone();
        async move {
            post_form(
                &app,
                "/oauth/token",
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", &code),
                    ("client_id", "tradelab-cli"),
                ],
                None,
            )
            .await
            .json()
        }
    };
    assert_eq!(poll().await["error"], "authorization_pending");
    assert_eq!(poll().await["error"], "slow_down");
    let mut b = Browser::new(&f.app);
    // The person types the code in lower case with a space.
    let typed = user_code.to_lowercase().replace('-', " ");
    let page = b
        .send(
            "GET",
            &format!("/oauth/device?user_code={}", typed.replace(' ', "%20")),
            None,
        )
        .await;
    assert!(page.body.contains("Sign in"), "{}", page.body);
    let confirm = b
        .submit(
            &page,
            "/oauth/authorize",
            &[("username", "ada"), ("password", "ada-password-123")],
        )
        .await;
    assert!(confirm.body.contains(&user_code), "{}", confirm.body);
    let done = b.submit(&confirm, "/oauth/device", &[("decision", "allow")]).await;
    assert!(done.body.contains("Device connected"), "{}", done.body);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let tokens = poll().await;
    assert_eq!(tokens["scope"], "data:read", "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(get_with(&f.app, "/v1/runs", Some(access)).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(poll().await["error"], "expired_token", "a device code is used once");
}

#[tokio::test]
async fn the_token_endpoint_is_rate_limited_per_client() {
    let mut settings = Settings::default();
    settings.auth.token_requests_per_minute = 3;
    let f = fixture_with(settings).await;
    let ask = || {
        post_form(
            &f.app,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(("svc", SERVICE_SECRET)),
        )
    };
    for _ in 0..3 {
        assert_eq!(ask().await.status, StatusCode::OK);
    }
    let limited = ask().await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.get(header::RETRY_AFTER).is_some());
    // Guessing a client's secret is limited per address (twice the rate):
    // the address has made 4 requests, so its 7th is refused.
    let mut guesses = Vec::new();
    for _ in 0..3 {
        let wrong = post_form(
            &f.app,
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(("svc", "tls_guess")),
        )
        .await;
        guesses.push(wrong.status);
    }
    assert_eq!(
        guesses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

/// Issue 19 finding 4: junk naming a client, from one address, locks
/// nobody else out of it, public or confidential.
#[tokio::test]
async fn junk_naming_a_client_from_one_address_locks_nobody_else_out() {
    let mut settings = Settings::default();
    settings.auth.token_requests_per_minute = 3;
    let f = fixture_with(settings).await;
    let junk_refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "tlr_junk"),
        ("client_id", "tradelab-cli"),
    ];
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            post_form_from(&f.app, Some("10.6.6.6"), "/oauth/token", &junk_refresh, None)
                .await
                .status,
        );
        let guess = post_form_from(
            &f.app,
            Some("10.6.6.6"),
            "/oauth/token",
            &[("grant_type", "client_credentials")],
            Some(("svc", "tls_guess")),
        )
        .await;
        statuses.push(guess.status);
    }
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    // The command line's users elsewhere get an answer about their token...
    let a = post_form_from(&f.app, Some("10.0.0.7"), "/oauth/token", &junk_refresh, None).await;
    assert_eq!(a.json()["error"], "invalid_grant", "{}", a.body);
    // ... and the service its token.
    let a = post_form_from(
        &f.app,
        Some("10.0.0.8"),
        "/oauth/token",
        &[("grant_type", "client_credentials")],
        Some(("svc", SERVICE_SECRET)),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
}

/// Issue 19 finding 9: device requests are limited per address, and
/// expired codes are purged rather than kept for ever.
#[tokio::test]
async fn device_requests_are_rate_limited_and_expired_codes_purged() {
    let mut settings = Settings::default();
    settings.auth.token_requests_per_minute = 5;
    let f = fixture_with(settings).await;
    let ask = |ip: &'static str| {
        post_form_from(
            &f.app,
            Some(ip),
            "/oauth/device_authorization",
            &[("client_id", "tradelab-cli"), ("scope", "data:read")],
            None,
        )
    };
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(ask("10.6.6.6").await.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses[19], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(ask("10.0.0.7").await.status, StatusCode::OK, "another address");

    // A code long expired is gone after the next request that makes codes.
    f.store
        .create_device_code("stale", "ZZZZ-ZZZZ", "tradelab-cli", "data:read", 1_000)
        .await
        .unwrap();
    f.state.auth.allow_purge_now();
    assert_eq!(ask("10.0.0.9").await.status, StatusCode::OK);
    assert_eq!(
        f.store.purge_expired_codes(2_000).await.unwrap(),
        0,
        "the server purged it already"
    );
}

/// Over https the cookies are `__Host-` cookies: Secure, Path=/, no
/// Domain, so a sibling subdomain cannot set them.
#[tokio::test]
async fn cookies_over_https_carry_the_host_prefix() {
    let f = fixture().await;
    let (signing, _) = SigningKey::generate();
    let ring = tradelab_auth::jwt::KeyRing {
        published: vec![signing.public()],
        signing,
    };
    let auth = Arc::new(AuthServer::new(
        true,
        "https://tradelab.example".into(),
        f.state.auth.settings.clone(),
        ring,
    ));
    let state = Arc::new(AppState::new(
        f.store.clone(),
        f.state.queue.clone(),
        f.state.settings.clone(),
        auth,
    ));
    let app = super::router(state, Duration::from_secs(30));
    let page = Browser::new(&app)
        .send(
            "GET",
            &authorize_uri("web", WEB_REDIRECT, Some(&pkce::challenge_of(&verifier(1))), ""),
            None,
        )
        .await;
    let set: Vec<String> = page
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with("__Host-tradelab_csrf="), "{}", set[0]);
    for part in ["; Path=/;", "; Secure", "; HttpOnly", "; SameSite=Lax"] {
        assert!(set[0].contains(part), "{part} in {}", set[0]);
    }
    assert!(!set[0].contains("Domain"));
}

#[tokio::test]
async fn discovery_keys_rotation_and_cors() {
    let mut settings = Settings::default();
    settings.auth.cors_origins = vec!["https://dash.example".into()];
    let f = fixture_with(settings).await;
    let meta = get_with(&f.app, "/.well-known/oauth-authorization-server", None)
        .await
        .json();
    assert_eq!(meta["issuer"], ISSUER);
    assert_eq!(meta["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert_eq!(meta["token_endpoint"], format!("{ISSUER}/oauth/token"));
    // Rotation: the old key stays published, so its tokens stay valid.
    let old = minted(&f, "data:read", |_| {}).await;
    let old_kid = f.state.auth.keys.read().unwrap().signing.kid.clone();
    auth_setup::rotate_key(&f.store, &f.kek).await.unwrap();
    let (ring, _) = auth_setup::load_keys(&f.store, &f.state.auth.settings, &f.kek)
        .await
        .unwrap();
    *f.state.auth.keys.write().unwrap() = ring;
    let new = minted(&f, "data:read", |_| {}).await;
    let jwks = get_with(&f.app, "/oauth/jwks.json", None).await.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(kids.contains(&old_kid.as_str()));
    assert_ne!(f.state.auth.keys.read().unwrap().signing.kid, old_kid);
    for t in [&old, &new] {
        assert_eq!(get_with(&f.app, "/v1/runs", Some(t)).await.status, StatusCode::OK);
    }

    let preflight = |origin: &'static str, path: &'static str| {
        let app = f.app.clone();
        async move {
            send(
                &app,
                Request::builder()
                    .method("OPTIONS")
                    .uri(path)
                    .header(header::ORIGIN, origin)
                    .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
                    .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
        }
    };
    let ok = preflight("https://dash.example", "/v1/runs").await;
    assert_eq!(ok.status, StatusCode::NO_CONTENT);
    assert_eq!(
        ok.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "https://dash.example"
    );
    assert!(ok.headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    let evil = preflight("https://evil.example", "/v1/runs").await;
    assert_eq!(evil.status, StatusCode::FORBIDDEN);
    assert!(evil.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    let token = preflight("https://dash.example", "/oauth/token").await;
    assert_eq!(token.status, StatusCode::NO_CONTENT);
    // The login pages are never shared across origins.
    let pages = preflight("https://dash.example", "/oauth/authorize").await;
    assert!(pages.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    // A real cross-origin call still needs its token.
    let a = send(
        &f.app,
        Request::builder()
            .uri("/v1/runs")
            .header(header::ORIGIN, "https://dash.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).unwrap(),
        "https://dash.example"
    );
}

/// Issue 19 finding 17: a job's event stream stops delivering once its
/// token is revoked, or has expired.
#[tokio::test]
async fn an_event_stream_ends_when_its_token_is_revoked_or_expires() {
    use futures_util::StreamExt;
    let f = fixture().await;
    let job = f.store.enqueue_job("train", &serde_json::json!({})).await.unwrap();
    let open = |token: String| {
        let app = f.app.clone();
        let uri = format!("/v1/jobs/{job}/events");
        async move {
            let r = app
                .oneshot(
                    Request::builder()
                        .uri(uri)
                        .header(header::AUTHORIZATION, format!("Bearer {token}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.into_body().into_data_stream()
        }
    };
    let until_end = |mut body: axum::body::BodyDataStream| async move {
        let mut all = String::new();
        let ended = tokio::time::timeout(Duration::from_secs(15), async {
            while let Some(Ok(chunk)) = body.next().await {
                all.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await;
        assert!(ended.is_ok(), "the stream did not end: {all}");
        all
    };

    let mut sid = String::new();
    let token = minted(&f, "data:read", |c| sid = c.sid.clone()).await;
    let mut body = open(token).await;
    let first = String::from_utf8_lossy(&body.next().await.unwrap().unwrap()).into_owned();
    assert!(first.contains("event: job"), "{first}");
    f.store.revoke_grant(&sid, "test").await.unwrap();
    let rest = until_end(body).await;
    assert!(rest.contains("event: denied") && rest.contains("revoked"), "{rest}");

    let short = minted(&f, "data:read", |c| c.exp = now_secs() + 2).await;
    let rest = until_end(open(short).await).await;
    assert!(rest.contains("event: denied") && rest.contains("expired"), "{rest}");
}

/// `POST /v1/jobs/{job}/cancel` with `token`.
fn cancel_request(job: &str, token: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri(format!("/v1/jobs/{job}/cancel"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn decisions_record_who_asked_and_jobs_are_cancelled_by_their_own_scope() {
    let f = fixture().await;
    let job = f.store.enqueue_job("train", &serde_json::json!({})).await.unwrap();
    let backtester = minted(&f, "backtest", |c| c.username = Some("ada".into())).await;
    let req = |t: &str| cancel_request(&job, t);
    let a = send(&f.app, req(&backtester)).await;
    assert_eq!(
        a.status,
        StatusCode::FORBIDDEN,
        "backtest scope cannot cancel a training job: {}",
        a.body
    );
    let trainer = minted(&f, "train", |_| {}).await;
    assert_eq!(send(&f.app, req(&trainer)).await.status, StatusCode::OK);
    // A parameter search or an evaluation is started with `backtest`, so
    // `backtest` cancels it (it used to ask for an `optimize` scope that
    // does not exist, so nobody could).
    for kind in ["optimize", "evaluate"] {
        let job = f.store.enqueue_job(kind, &serde_json::json!({})).await.unwrap();
        let req = |t: &str| cancel_request(&job, t);
        let refused = send(&f.app, req(&trainer)).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{kind}: {}", refused.body);
        assert!(refused.body.contains("needs the `backtest` scope"), "{}", refused.body);
        assert_eq!(send(&f.app, req(&backtester)).await.status, StatusCode::OK, "{kind}");
    }
    let caller = super::guard::Caller {
        client_id: "web".into(),
        username: Some("ada".into()),
        scopes: vec!["trade".into()],
        grant_id: "g".into(),
        token_id: "t".into(),
        expires_secs: 0,
    };
    assert_eq!(caller.name(), "ada via web");
}

mod fuzz {
    //! Property-based fuzzing of the OAuth endpoints' form and query
    //! parsers (issue 19): hostile bodies, queries and credentials on every
    //! authorization-server route. Nothing may be a server error. Cases:
    //! `TRADELAB_FUZZ_CASES`.

    use proptest::prelude::*;

    use super::*;

    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[A-Za-z0-9_.~%+=-]{0,40}",
            ".{0,40}",
            Just("%".to_string()),
            Just("%zz%00%ff".to_string()),
            Just("a".repeat(5000)),
        ]
    }

    fn form() -> impl Strategy<Value = String> {
        let keys = [
            "grant_type",
            "code",
            "redirect_uri",
            "client_id",
            "client_secret",
            "code_verifier",
            "refresh_token",
            "scope",
            "token",
            "token_type_hint",
            "device_code",
            "username",
            "password",
            "csrf",
            "decision",
            "user_code",
            "response_type",
            "state",
            "code_challenge",
            "code_challenge_method",
            "new_password",
            "confirm",
            "current_password",
            "flow",
        ];
        prop_oneof![
            prop::collection::vec((prop::sample::select(keys.to_vec()), token()), 0..8).prop_map(|pairs| {
                pairs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
            }),
            ".{0,200}",
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ]
    }

    fn authorization() -> impl Strategy<Value = Option<String>> {
        use base64::Engine;
        prop::option::of(prop_oneof![
            ".{0,60}".prop_map(|t| format!("Basic {t}")),
            (token(), token()).prop_map(|(a, b)| format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{a}:{b}"))
            )),
            token().prop_map(|t| format!("Bearer {t}")),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: tradelab_testkit::fuzz_cases(256),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn fuzz_oauth_forms_never_fail_the_server(
            route in prop::sample::select(vec![
                ("POST", "/oauth/token"),
                ("POST", "/oauth/revoke"),
                ("POST", "/oauth/introspect"),
                ("POST", "/oauth/device_authorization"),
                ("POST", "/oauth/authorize"),
                ("POST", "/oauth/password"),
                ("POST", "/oauth/consent"),
                ("POST", "/oauth/device"),
                ("GET", "/oauth/authorize"),
                ("GET", "/oauth/device"),
            ]),
            body in form(),
            auth in authorization(),
            cookie in prop::option::of(token()),
        ) {
            thread_local! {
                static RUNTIME: tokio::runtime::Runtime =
                    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                static FIXTURE: std::cell::OnceCell<Fixture> = const { std::cell::OnceCell::new() };
            }
            let (method, path) = route;
            let status = RUNTIME.with(|rt| {
                FIXTURE.with(|cell| {
                    let f = cell.get_or_init(|| rt.block_on(fixture()));
                    let uri = if method == "GET" { format!("{path}?{body}") } else { path.to_string() };
                    let mut req = Request::builder().method(method).uri(uri.as_str());
                    if method == "POST" {
                        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                    }
                    if let Some(a) = &auth {
                        req = req.header(header::AUTHORIZATION, a.as_str());
                    }
                    if let Some(c) = &cookie {
                        req = req.header(header::COOKIE, format!("tradelab_csrf={c}; tradelab_session={c}"));
                    }
                    let Ok(req) = req.body(Body::from(if method == "POST" { body.clone() } else { String::new() })) else {
                        // Not a valid HTTP request at all (hyper refuses it before us).
                        return StatusCode::BAD_REQUEST;
                    };
                    rt.block_on(send(&f.app, req)).status
                })
            });
            prop_assert!(!status.is_server_error(), "{method} {path} with {body:?} -> {status}");
        }
    }
}
