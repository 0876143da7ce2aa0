//! Talking to a real `tradelab serve` from a test: the server process
//! (its output collected, killed when dropped), a cookie-keeping browser
//! that does not follow redirects, and users added through the command line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `tradelab` for a server of its own in `dir`: a fresh SQLite database
/// and config folder there, no administrator password from the
/// environment (the first start prints a one-time one).
pub fn server_command(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradelab"));
    c.current_dir(dir)
        .env("NO_COLOR", "1")
        .env(
            "TRADELAB_DATABASE_URL",
            format!("sqlite://{}", dir.join("t.db").display()),
        )
        .env("TRADELAB_CONFIG_DIR", dir.join("config"))
        .env_remove("TRADELAB_ADMIN_PASSWORD");
    c
}

/// Adds a user with `cmd auth user add` (`cmd`: a `tradelab` command set
/// up for the test's database), the password on stdin.
pub fn add_user(mut cmd: Command, name: &str, role: &str, password: &str) {
    let mut child = cmd
        .args(["auth", "user", "add", name, "--role", role, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", super::text(&out));
}

/// A server process; its output is collected (to look for leaked secrets)
/// and it is killed when dropped.
pub struct Server {
    child: Child,
    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    output: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `cmd serve` on a free port; waits for its address line.
    pub fn start(cmd: Command) -> Server {
        Server::start_with(cmd, &[])
    }

    /// [`Server::start`] with extra `serve` flags.
    pub fn start_with(mut cmd: Command, extra: &[&str]) -> Server {
        let mut child = cmd
            .args(["serve", "--addr", "127.0.0.1:0"])
            // No job workers unless the test asks for some.
            .args(if extra.contains(&"--workers") {
                &[][..]
            } else {
                &["--workers", "0"][..]
            })
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let mut r = BufReader::new(err);
            while r.read_line(&mut s).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&std::mem::take(&mut s));
            }
        });
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(
            line.starts_with("listening on http://"),
            "{line}{}",
            output.lock().unwrap()
        );
        output.lock().unwrap().push_str(&line);
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = out.read_to_string(&mut rest);
            sink.lock().unwrap().push_str(&rest);
        });
        let url = line.split_whitespace().nth(2).unwrap().to_string();
        Server { child, url, output }
    }

    /// What the server printed so far.
    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

/// A browser over plain HTTP: cookies kept, redirects not followed.
pub struct Browser {
    /// The HTTP client (no redirects, statuses are not errors).
    pub agent: ureq::Agent,
    /// Cookies by name.
    pub cookies: HashMap<String, String>,
}

/// An answer: status, Location header, body.
pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

impl Page {
    /// The hidden inputs of the page's form.
    pub fn hidden(&self) -> Vec<(String, String)> {
        self.body
            .split(r#"<input type="hidden" name=""#)
            .skip(1)
            .map(|rest| {
                let (name, rest) = rest.split_once('"').unwrap();
                let value = rest.split_once(r#"value=""#).unwrap().1.split_once('"').unwrap().0;
                (name.to_string(), value.replace("&amp;", "&"))
            })
            .collect()
    }
}

impl Browser {
    /// A browser with no cookies.
    pub fn new() -> Browser {
        Browser {
            agent: ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, r: &mut ureq::http::Response<ureq::Body>) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let pair = c.to_str().unwrap().split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.insert(k.into(), v.into());
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default(),
            body: r.body_mut().read_to_string().unwrap_or_default(),
        }
    }

    /// GET, with the cookies.
    pub fn get(&mut self, url: &str) -> Page {
        let mut r = self
            .agent
            .get(url)
            .header("Cookie", &self.cookie_header())
            .call()
            .unwrap();
        self.keep(&mut r)
    }

    /// Posts the page's form with `extra` fields added.
    pub fn submit(&mut self, url: &str, page: &Page, extra: &[(&str, &str)]) -> Page {
        let mut fields = page.hidden();
        fields.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut r = self
            .agent
            .post(url)
            .header("Cookie", &self.cookie_header())
            .send_form(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .unwrap();
        self.keep(&mut r)
    }
}
