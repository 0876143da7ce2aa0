//! The authorization server in a real `tradelab serve`, from outside:
//!
//! - Python's authlib (a client nobody here wrote) completes every flow
//!   and is refused where it must be (`scripts/reference/oauth_authlib_client.py`);
//!   none of the secrets it saw may appear in the server's output. Runs
//!   when `TRADELAB_TEST_AUTHLIB` names a Python with authlib (`.ci/run`
//!   installs one);
//! - `tradelab login` (loopback PKCE, and the device flow), `tradelab api`
//!   with automatic refresh, and `tradelab logout` revoking;
//! - the first start creates an administrator with a one-time password,
//!   printed once.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use std::time::Duration;

use serde_json::Value;

mod common;

use common::http::{add_user, server_command, Browser, Server};
use common::{root, text};

fn tradelab(dir: &Path) -> Command {
    let mut c = server_command(dir);
    c.args(["--set", &format!("data.raw_dir={}", root().join("data/raw").display())]);
    c
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn authlib_completes_every_flow_and_no_secret_reaches_the_log() {
    let Some(python) = std::env::var("TRADELAB_TEST_AUTHLIB").ok().filter(|p| !p.is_empty()) else {
        eprintln!(
            "skipped: set TRADELAB_TEST_AUTHLIB to a Python with authlib (scripts/reference/requirements-oauth.txt)"
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    add_user(tradelab(d), "ada", "researcher", "ada-password-123");
    ok(tradelab(d)
        .args([
            "auth",
            "client",
            "add",
            "authlib-public",
            "--name",
            "authlib public",
            "--public",
        ])
        .args(["--redirect-uri", "http://127.0.0.1:9/cb"])
        .output()
        .unwrap());
    let added = ok(tradelab(d)
        .args(["auth", "client", "add", "authlib-service", "--name", "authlib service"])
        .args(["--grant", "client_credentials", "--scope", "data:read models:read"])
        // It introspects tokens (RFC 7662), which only resource servers may.
        .arg("--resource-server")
        .output()
        .unwrap());
    let secret = added
        .split("client secret: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let server = Server::start({
        let mut c = tradelab(d);
        c.env("TRADELAB_ADMIN_PASSWORD", "admin-password-123");
        c
    });
    let run = Command::new(&python)
        .arg(root().join("scripts/reference/oauth_authlib_client.py"))
        .args([
            "--server",
            &server.url,
            "--user",
            "ada",
            "--password",
            "ada-password-123",
        ])
        .args([
            "--public-client",
            "authlib-public",
            "--redirect-uri",
            "http://127.0.0.1:9/cb",
        ])
        .args(["--service-client", "authlib-service", "--service-secret", &secret])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(run.status.success(), "{}", text(&run));
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["failed"], 0, "{stdout}");
    assert!(summary["passed"].as_u64().unwrap() >= 100, "{stdout}");
    // No token, code, secret or password the client saw is in the
    // server's output (its start-up lines, warnings and errors).
    std::thread::sleep(Duration::from_millis(200));
    let log = server.output();
    let secrets = summary["secrets"].as_array().unwrap();
    assert!(secrets.len() > 20, "the script lists what it saw");
    for s in secrets
        .iter()
        .filter_map(Value::as_str)
        .chain([secret.as_str(), "admin-password-123"])
    {
        assert!(!log.contains(s), "a secret reached the server's output: {log}");
    }
}

/// Runs `tradelab login` (or `login --device`) and returns it with the
/// stdout lines printed before it waits for the person.
fn start_login(d: &Path, server: &str, args: &[&str]) -> (Child, Vec<String>) {
    let mut child = tradelab(d)
        .args(["login", "--server", server, "--no-browser"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l.trim().to_string());
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = out.read_to_string(&mut rest);
    });
    (child, lines)
}

fn credentials(d: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(d.join("config/credentials.json")).unwrap()).unwrap()
}

#[test]
fn the_command_line_signs_in_calls_the_api_refreshes_and_signs_out() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    add_user(tradelab(d), "ada", "researcher", "ada-password-123");
    let server = Server::start(tradelab(d));
    let url = server.url.clone();

    // Browser sign-in through the loopback redirect.
    let (login, lines) = start_login(d, &url, &[]);
    let authorize = lines[1].clone();
    assert!(authorize.starts_with(&format!("{url}/oauth/authorize?")), "{lines:?}");
    let mut b = Browser::new();
    let page = b.get(&authorize);
    let consent = b.submit(
        &format!("{url}/oauth/authorize"),
        &page,
        &[("username", "ada"), ("password", "ada-password-123")],
    );
    let done = b.submit(&format!("{url}/oauth/consent"), &consent, &[("decision", "allow")]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location.starts_with("http://127.0.0.1:"), "{}", done.location);
    let landed = b.get(&done.location);
    assert!(landed.body.contains("Signed in"));
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("config/credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "credentials readable by the user alone");
    }
    let saved = credentials(d)["servers"][&url].clone();
    assert!(saved["scope"].as_str().unwrap().contains("train"));

    // The API with the stored token.
    let api = |path: &str| {
        tradelab(d)
            .args(["api", "GET", path, "--server", &url])
            .output()
            .unwrap()
    };
    assert_eq!(ok(api("/v1/runs")).trim(), "[]");
    let refused = api("/metrics");
    assert!(!refused.status.success());
    assert!(text(&refused).contains("403"), "{}", text(&refused));
    // An expired access token is refreshed on the way (and the refresh
    // token rotates).
    let mut file = credentials(d);
    file["servers"][&url]["expires_at"] = 0.into();
    std::fs::write(d.join("config/credentials.json"), file.to_string()).unwrap();
    assert_eq!(ok(api("/v1/runs")).trim(), "[]");
    let refreshed = credentials(d)["servers"][&url].clone();
    assert_ne!(refreshed["refresh_token"], saved["refresh_token"]);
    assert_ne!(refreshed["access_token"], saved["access_token"]);
    // Issue 20: without --server, api goes to the server last signed in to.
    assert_eq!(credentials(d)["last_server"], url.as_str());
    assert_eq!(
        ok(tradelab(d).args(["api", "GET", "/v1/runs"]).output().unwrap()).trim(),
        "[]"
    );
    let refreshed = credentials(d)["servers"][&url].clone();
    // Issue 20: a token to paste into Swagger UI (its bearer scheme).
    let pasted = ok(tradelab(d).arg("token").output().unwrap()).trim().to_string();
    assert_eq!(pasted, refreshed["access_token"].as_str().unwrap());
    let mut r = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(format!("{url}/v1/runs"))
        .header("Authorization", &format!("Bearer {pasted}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.body_mut().read_to_string().unwrap());

    // Logout (to the last server, without --server) revokes on the server:
    // the copied access token stops working.
    let out = ok(tradelab(d).arg("logout").output().unwrap());
    assert!(out.contains("revoked"), "{out}");
    let mut r = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .get(format!("{url}/v1/runs"))
        .header(
            "Authorization",
            &format!("Bearer {}", refreshed["access_token"].as_str().unwrap()),
        )
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "{}", r.body_mut().read_to_string().unwrap());
    let after = api("/v1/runs");
    assert!(text(&after).contains("not signed in"), "{}", text(&after));

    // The device flow: the code is entered in a browser elsewhere.
    let (login, lines) = start_login(d, &url, &["--device", "--scope", "data:read"]);
    let code = lines[0].split("enter the code ").nth(1).unwrap().trim().to_string();
    let mut b = Browser::new();
    let page = b.get(&format!("{url}/oauth/device?user_code={code}"));
    let confirm = b.submit(
        &format!("{url}/oauth/authorize"),
        &page,
        &[("username", "ada"), ("password", "ada-password-123")],
    );
    assert!(confirm.body.contains(&code), "{}", confirm.body);
    let done = b.submit(&format!("{url}/oauth/device"), &confirm, &[("decision", "allow")]);
    assert!(done.body.contains("Device connected"));
    let out = login.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(credentials(d)["servers"][&url]["scope"], "data:read");
    assert_eq!(ok(api("/v1/runs")).trim(), "[]");
}

#[test]
fn the_first_start_creates_an_administrator_with_a_one_time_password() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let first = Server::start(tradelab(d));
    std::thread::sleep(Duration::from_millis(200));
    let log = first.output();
    let password = log
        .split("one-time password ")
        .nth(1)
        .unwrap_or_else(|| panic!("no password line: {log}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    drop(first);
    // Issue 19 finding 1: the database and the key-encryption key beside it
    // are the owner's alone, and a database others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("t.db"), mode("t.db.key")), (0o600, 0o600));
        std::fs::set_permissions(d.join("t.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let refused = tradelab(d).args(["auth", "user", "list"]).output().unwrap();
        assert!(
            !refused.status.success() && text(&refused).contains("chmod 600"),
            "{}",
            text(&refused)
        );
        std::fs::set_permissions(d.join("t.db"), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let listed = ok(tradelab(d).args(["auth", "user", "list"]).output().unwrap());
    assert!(
        listed.contains("admin") && listed.contains("must change password"),
        "{listed}"
    );
    // Printed once: a restart has an administrator and says nothing.
    let second = Server::start(tradelab(d));
    std::thread::sleep(Duration::from_millis(200));
    assert!(!second.output().contains("one-time password"), "{}", second.output());
    // Signing in with it leads to the password change, then consent.
    let url = second.url.clone();
    let mut b = Browser::new();
    let page = b.get(&format!(
        "{url}/oauth/authorize?response_type=code&client_id=tradelab-cli&redirect_uri=http://127.0.0.1:1/callback&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    ));
    let change = b.submit(
        &format!("{url}/oauth/authorize"),
        &page,
        &[("username", "admin"), ("password", &password)],
    );
    assert!(change.body.contains("Choose a new one"), "{}", change.body);
    let consent = b.submit(
        &format!("{url}/oauth/password"),
        &change,
        &[
            ("new_password", "the-admins-own-password"),
            ("confirm", "the-admins-own-password"),
        ],
    );
    assert!(consent.body.contains("administer the server"), "{}", consent.body);
    drop(second);
    // Switching checks off is explicit and loud.
    let open = Server::start_with(tradelab(d), &["--insecure-no-auth"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        open.output().contains("WARNING: --insecure-no-auth"),
        "{}",
        open.output()
    );
    assert_eq!(Browser::new().get(&format!("{}/v1/runs", open.url)).status, 200);
    drop(open);
    // Bad administration input gets one clear line.
    for (args, expect) in [
        (
            vec!["auth", "user", "add", "bad name", "--role", "viewer"],
            "not a valid user name",
        ),
        (vec!["auth", "user", "add", "x", "--role", "root"], "not a role"),
        (vec!["auth", "user", "disable", "admin"], "last enabled administrator"),
        (vec!["auth", "user", "disable", "nobody"], "no user `nobody`"),
        (
            vec![
                "auth",
                "client",
                "add",
                "c1",
                "--name",
                "C",
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            "only loopback",
        ),
        (
            vec![
                "auth",
                "client",
                "add",
                "c1",
                "--name",
                "C",
                "--public",
                "--grant",
                "client_credentials",
            ],
            "public client",
        ),
        (
            vec!["auth", "client", "add", "c1", "--name", "C", "--scope", "everything"],
            "not a scope",
        ),
        (vec!["auth", "client", "remove", "nobody"], "no client `nobody`"),
    ] {
        let o = tradelab(d).args(&args).output().unwrap();
        assert!(!o.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect) && !err.contains("panicked"), "{args:?}: {err}");
    }
}

/// The system start journey on PostgreSQL over verified TLS: a fresh
/// database is migrated, the authorization server initialised (keys, first
/// administrator, CLI client) and the server answers, with the time to
/// ready in its first line. Needs TRADELAB_TEST_POSTGRES_URL and
/// TRADELAB_TEST_POSTGRES_TLS_ROOT (`.ci/run` sets both when it can).
#[test]
fn serve_on_postgres_over_verified_tls_migrates_and_initialises_the_authorization_server() {
    let (Ok(base), Ok(root_cert)) = (
        std::env::var("TRADELAB_TEST_POSTGRES_URL"),
        std::env::var("TRADELAB_TEST_POSTGRES_TLS_ROOT"),
    ) else {
        eprintln!("skipped: needs TRADELAB_TEST_POSTGRES_URL and TRADELAB_TEST_POSTGRES_TLS_ROOT");
        return;
    };
    let db = common::TestDatabase::create(&base, format!("tradelab_auth_{}", std::process::id()));
    let name = &db.name;
    // The certificate names `localhost`: verify-full checks that name.
    let url = format!("postgres://postgres@localhost:5432/{name}?sslmode=verify-full&sslrootcert={root_cert}");
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // Signing keys are sealed with a key-encryption key every server on the
    // database must share: without one the server says so and stops.
    let mut child = tradelab(d)
        .env("TRADELAB_DATABASE_URL", &url)
        .env_remove("TRADELAB_KEY_ENCRYPTION_KEY")
        .args(["serve", "--addr", "127.0.0.1:0", "--workers", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("a server without a key-encryption key started on PostgreSQL");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = child.wait_with_output().unwrap();
    assert!(
        !refused.status.success() && text(&refused).contains("TRADELAB_KEY_ENCRYPTION_KEY"),
        "{}",
        text(&refused)
    );
    let server = Server::start({
        let mut c = tradelab(d);
        c.env("TRADELAB_DATABASE_URL", &url)
            .env("TRADELAB_KEY_ENCRYPTION_KEY", "22".repeat(32))
            .env("TRADELAB_ADMIN_PASSWORD", "admin-password-123");
        c
    });
    let log = server.output();
    let ready_ms: f64 = log
        .split("ready in ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    eprintln!("ready in {ready_ms} ms on PostgreSQL over verify-full TLS");
    assert!(log.contains("created the administrator `admin`"), "{log}");
    let mut b = Browser::new();
    let meta = b.get(&format!("{}/.well-known/oauth-authorization-server", server.url));
    assert_eq!(meta.status, 200);
    let jwks: Value = serde_json::from_str(&b.get(&format!("{}/oauth/jwks.json", server.url)).body).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    drop(server);
    // The connection really was verified TLS: a root that did not sign the
    // server's certificate is refused.
    let other_root = "/etc/ssl/certs/ISRG_Root_X1.pem";
    if Path::new(other_root).exists() {
        let bad = tradelab(d)
            .env("TRADELAB_DATABASE_URL", url.replace(&root_cert, other_root))
            .args(["auth", "user", "list"])
            .output()
            .unwrap();
        assert!(!bad.status.success(), "{}", text(&bad));
    }
    let listed = ok(tradelab(d)
        .env("TRADELAB_DATABASE_URL", &url)
        .args(["auth", "user", "list"])
        .output()
        .unwrap());
    assert!(listed.contains("admin"), "{listed}");
    drop(db);
}
