//! `tradelab login`, `logout` and `api`: the command line as an OAuth
//! client of a tradelab server (the public client `tradelab-cli`).
//!
//! - login opens the browser on the authorization endpoint with PKCE and
//!   receives the code on a loopback port (RFC 8252); `--device` uses the
//!   device grant (RFC 8628) for machines without a browser;
//! - tokens are kept per server in `credentials.json` in the user's config
//!   directory (`$TRADELAB_CONFIG_DIR`, else `$XDG_CONFIG_HOME/tradelab`,
//!   else `~/.config/tradelab`), readable by the user alone (0600);
//! - `api` refreshes an access token that has expired (or is refused)
//!   before giving up; logout revokes the refresh token, and with it every
//!   token of the sign-in.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tradelab_auth::{pkce, secret};

use crate::cli::{ApiArgs, LoginArgs, LogoutArgs, TokenArgs};
use tradelab_auth::grant::CLI_CLIENT_ID;
use tradelab_core::time::now_secs;

/// Tokens for one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds since the epoch.
    pub expires_at: i64,
    pub scope: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialFile {
    servers: BTreeMap<String, Saved>,
    /// The server `login` last signed in to: what `api` and `logout` talk
    /// to without `--server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_server: Option<String>,
}

/// Where `api` and `logout` go: `--server`, else the server last signed in
/// to, else the default local server.
fn server_or_last(server: &Option<String>) -> Result<String> {
    Ok(match server {
        Some(s) => s.clone(),
        None => load()?.last_server.unwrap_or_else(|| "http://127.0.0.1:8080".into()),
    })
}

fn config_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("TRADELAB_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("tradelab"));
    }
    let home = std::env::var_os("HOME").context("neither TRADELAB_CONFIG_DIR, XDG_CONFIG_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".config").join("tradelab"))
}

pub fn credentials_path() -> Result<PathBuf> {
    Ok(config_dir()?.join("credentials.json"))
}

fn load() -> Result<CredentialFile> {
    let path = credentials_path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is damaged; delete it and run `tradelab login` again",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialFile::default()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the file whole (temporary file, then rename) with mode 0600, so
/// a killed process never leaves half a file and nobody else can read it.
fn store(file: &CredentialFile) -> Result<()> {
    let path = credentials_path()?;
    let dir = path.parent().context("the credentials path has no folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".credentials.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    let mut out = options
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    out.write_all(&serde_json::to_vec_pretty(file)?)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, &path).with_context(|| format!("saving {}", path.display()))?;
    Ok(())
}

fn server_key(server: &str) -> String {
    server.trim_end_matches('/').to_string()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Sends a form; the status and the JSON answer.
fn post_form(agent: &ureq::Agent, url: &str, pairs: &[(&str, &str)]) -> Result<(u16, Value)> {
    let mut response = agent
        .post(url)
        .send_form(pairs.iter().copied())
        .with_context(|| format!("{url} did not answer; is the server running?"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

struct Endpoints {
    issuer: String,
    authorization: String,
    token: String,
    device: String,
    revocation: String,
}

fn discover(agent: &ureq::Agent, server: &str) -> Result<Endpoints> {
    let url = format!("{}/.well-known/oauth-authorization-server", server_key(server));
    let mut response = agent
        .get(&url)
        .call()
        .with_context(|| format!("{server} did not answer; is `tradelab serve` running there?"))?;
    if response.status().as_u16() != 200 {
        bail!("{url} answered {}; is {server} a tradelab server?", response.status());
    }
    let doc: Value =
        serde_json::from_str(&response.body_mut().read_to_string()?).with_context(|| format!("{url} is not JSON"))?;
    let field = |k: &str| {
        doc[k]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("the server metadata has no {k}"))
    };
    Ok(Endpoints {
        issuer: field("issuer")?,
        authorization: field("authorization_endpoint")?,
        token: field("token_endpoint")?,
        device: field("device_authorization_endpoint")?,
        revocation: field("revocation_endpoint")?,
    })
}

fn describe_error(v: &Value) -> String {
    format!(
        "{}: {}",
        v["error"].as_str().unwrap_or("error"),
        v["error_description"].as_str().unwrap_or("(no description)")
    )
}

fn saved_from(
    answer: &Value,
    endpoints_token: &str,
    revocation: &str,
    previous_refresh: Option<&str>,
) -> Result<Saved> {
    Ok(Saved {
        access_token: answer["access_token"]
            .as_str()
            .context("the token answer has no access_token")?
            .to_string(),
        refresh_token: answer["refresh_token"]
            .as_str()
            .or(previous_refresh)
            .map(str::to_string),
        expires_at: now_secs() + answer["expires_in"].as_i64().unwrap_or(300),
        scope: answer["scope"].as_str().unwrap_or("").to_string(),
        token_endpoint: endpoints_token.to_string(),
        revocation_endpoint: revocation.to_string(),
    })
}

fn save_for(server: &str, saved: Saved) -> Result<()> {
    let mut file = load()?;
    file.servers.insert(server_key(server), saved);
    store(&file)
}

/// Remembers `server` as the one signed in to last.
fn remember(server: &str) -> Result<()> {
    let mut file = load()?;
    file.last_server = Some(server_key(server));
    store(&file)
}

pub fn login(a: &LoginArgs) -> Result<()> {
    let agent = agent();
    let endpoints = discover(&agent, &a.server)?;
    let answer = if a.device {
        device_login(&agent, &endpoints, a)?
    } else {
        browser_login(&agent, &endpoints, a)?
    };
    let saved = saved_from(&answer, &endpoints.token, &endpoints.revocation, None)?;
    let scope = saved.scope.clone();
    save_for(&a.server, saved)?;
    remember(&a.server)?;
    println!(
        "signed in to {} (scopes: {scope}); tokens saved in {}",
        server_key(&a.server),
        credentials_path()?.display()
    );
    Ok(())
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn browser_login(agent: &ureq::Agent, e: &Endpoints, a: &LoginArgs) -> Result<Value> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("opening a loopback port for the sign-in")?;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", listener.local_addr()?.port());
    let verifier = secret::new_secret("");
    let state = secret::new_secret("");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", CLI_CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("code_challenge", &pkce::challenge_of(&verifier))
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", &state);
    if let Some(scope) = &a.scope {
        query.append_pair("scope", scope);
    }
    let url = format!("{}?{}", e.authorization, query.finish());
    println!("Open this address to sign in:\n{url}");
    let _ = std::io::stdout().flush();
    if !a.no_browser {
        open_browser(&url);
    }
    let params = wait_for_callback(&listener, Duration::from_secs(300))?;
    if let Some(error) = params.get("error") {
        bail!(
            "the sign-in was refused: {error}: {}",
            params.get("error_description").map(String::as_str).unwrap_or("")
        );
    }
    if params.get("state") != Some(&state) {
        bail!("the sign-in answer does not match this request (state differs); run `tradelab login` again");
    }
    if params.get("iss").is_some_and(|iss| *iss != e.issuer) {
        bail!("the sign-in answer came from another server (iss differs); run `tradelab login` again");
    }
    let code = params.get("code").context("the sign-in answer has no code")?;
    let (status, answer) = post_form(
        agent,
        &e.token,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("client_id", CLI_CLIENT_ID),
            ("code_verifier", &verifier),
        ],
    )?;
    if status != 200 {
        bail!("the server refused the code: {}", describe_error(&answer));
    }
    Ok(answer)
}

/// Serves the loopback redirect once; the query parameters it carried.
fn wait_for_callback(listener: &std::net::TcpListener, timeout: Duration) -> Result<BTreeMap<String, String>> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut line = String::new();
                BufReader::new(&stream).read_line(&mut line)?;
                let target = line.split_whitespace().nth(1).unwrap_or("");
                let Some(query) = target.strip_prefix("/callback?") else {
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                };
                let params: BTreeMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                let body = "<!doctype html><title>tradelab</title><p>Signed in. You can close this page and return to the terminal.</p>";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                return Ok(params);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!("no sign-in within {} s; run `tradelab login` again", timeout.as_secs());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(e).context("waiting for the sign-in"),
        }
    }
}

fn device_login(agent: &ureq::Agent, e: &Endpoints, a: &LoginArgs) -> Result<Value> {
    let mut pairs = vec![("client_id", CLI_CLIENT_ID)];
    if let Some(scope) = &a.scope {
        pairs.push(("scope", scope));
    }
    let (status, start) = post_form(agent, &e.device, &pairs)?;
    if status != 200 {
        bail!("the server refused the device sign-in: {}", describe_error(&start));
    }
    let device_code = start["device_code"].as_str().context("no device_code")?.to_string();
    println!(
        "On any device, open {} and enter the code {}\n(or open {})",
        start["verification_uri"].as_str().unwrap_or("?"),
        start["user_code"].as_str().unwrap_or("?"),
        start["verification_uri_complete"].as_str().unwrap_or("?"),
    );
    let _ = std::io::stdout().flush();
    let mut interval = start["interval"].as_u64().unwrap_or(5);
    let deadline = Instant::now() + Duration::from_secs(start["expires_in"].as_u64().unwrap_or(600));
    loop {
        std::thread::sleep(Duration::from_secs(interval));
        let (status, answer) = post_form(
            agent,
            &e.token,
            &[
                ("grant_type", tradelab_auth::grant::DEVICE_CODE),
                ("device_code", &device_code),
                ("client_id", CLI_CLIENT_ID),
            ],
        )?;
        if status == 200 {
            return Ok(answer);
        }
        match answer["error"].as_str() {
            Some("authorization_pending") => {}
            Some("slow_down") => interval += 5,
            _ => bail!("the device sign-in ended: {}", describe_error(&answer)),
        }
        if Instant::now() > deadline {
            bail!("the device code expired; run `tradelab login --device` again");
        }
    }
}

fn saved_tokens(server: &str) -> Result<Saved> {
    load()?.servers.remove(&server_key(server)).with_context(|| {
        format!(
            "not signed in to {}; run `tradelab login --server {}`",
            server_key(server),
            server_key(server)
        )
    })
}

/// Exchanges the refresh token for new tokens and saves them.
fn refresh(agent: &ureq::Agent, server: &str, saved: &Saved) -> Result<Saved> {
    let refresh = saved.refresh_token.as_deref().with_context(|| {
        format!("the access token expired and there is no refresh token; run `tradelab login --server {server}`")
    })?;
    let (status, answer) = post_form(
        agent,
        &saved.token_endpoint,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLI_CLIENT_ID),
        ],
    )?;
    if status != 200 {
        bail!(
            "the server refused to refresh the sign-in ({}); run `tradelab login --server {}`",
            describe_error(&answer),
            server_key(server)
        );
    }
    let fresh = saved_from(
        &answer,
        &saved.token_endpoint,
        &saved.revocation_endpoint,
        Some(refresh),
    )?;
    save_for(server, fresh.clone())?;
    Ok(fresh)
}

/// The stored tokens for `server`, refreshed first when the access token
/// lapses within `margin_secs` (so it does not lapse in flight).
fn live_tokens(agent: &ureq::Agent, server: &str, margin_secs: i64) -> Result<Saved> {
    let saved = saved_tokens(server)?;
    if saved.expires_at - margin_secs <= now_secs() {
        return refresh(agent, server, &saved);
    }
    Ok(saved)
}

pub fn api(a: &ApiArgs) -> Result<()> {
    let agent = agent();
    let server = server_or_last(&a.server)?;
    let mut saved = live_tokens(&agent, &server, 5)?;
    let method = a.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST") {
        bail!("`{}` is not a method this command sends; use GET or POST", a.method);
    }
    let url = format!("{}{}", server_key(&server), a.path);
    let send = |token: &str| -> Result<(u16, String)> {
        let auth = format!("Bearer {token}");
        let response = if method == "GET" {
            agent.get(&url).header("Authorization", &auth).call()
        } else {
            agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(a.body.as_deref().unwrap_or("{}"))
        };
        let mut response = response.with_context(|| format!("{url} did not answer"))?;
        let status = response.status().as_u16();
        Ok((status, response.body_mut().read_to_string().unwrap_or_default()))
    };
    let (mut status, mut body) = send(&saved.access_token)?;
    if status == 401 && saved.refresh_token.is_some() {
        saved = refresh(&agent, &server, &saved)?;
        (status, body) = send(&saved.access_token)?;
    }
    println!("{body}");
    if status >= 400 {
        bail!("{method} {} answered {status}", a.path);
    }
    Ok(())
}

/// Prints a valid access token for the server signed in to, refreshing it
/// when it is about to lapse.
pub fn token(a: &TokenArgs) -> Result<()> {
    let server = server_or_last(&a.server)?;
    // A pasted token should last a while: refresh one that lapses within a minute.
    let saved = live_tokens(&agent(), &server, 60)?;
    println!("{}", saved.access_token);
    Ok(())
}

pub fn logout(a: &LogoutArgs) -> Result<()> {
    let server = server_or_last(&a.server)?;
    let mut file = load()?;
    let Some(saved) = file.servers.remove(&server_key(&server)) else {
        println!("not signed in to {}", server_key(&server));
        return Ok(());
    };
    let agent = agent();
    // Revoking the refresh token revokes the whole sign-in on the server.
    let mut revoked = true;
    for token in saved.refresh_token.iter().chain(std::iter::once(&saved.access_token)) {
        match post_form(
            &agent,
            &saved.revocation_endpoint,
            &[("token", token), ("client_id", CLI_CLIENT_ID)],
        ) {
            Ok((200, _)) => {}
            Ok((status, v)) => {
                revoked = false;
                eprintln!(
                    "warning: the server answered {status} to the revocation: {}",
                    describe_error(&v)
                );
            }
            Err(e) => {
                revoked = false;
                eprintln!("warning: {e:#}");
            }
        }
    }
    store(&file)?;
    if revoked {
        println!("signed out of {}; its tokens are revoked", server_key(&server));
    } else {
        println!(
            "signed out of {} here; the server could not be told, so its tokens stay valid until they expire",
            server_key(&server)
        );
    }
    Ok(())
}
