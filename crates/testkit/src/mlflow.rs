//! A real MLflow tracking server for the mirror's tests (PyPI `mlflow`,
//! installed by `scripts/reference/venvs.sh`), on a free loopback port with
//! its own SQLite file, stopped when dropped; and a minimal HTTP client to
//! read back what the mirror wrote.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The environment variable naming the `mlflow` executable; the tests that
/// need a server are skipped, saying so, where it is not set.
pub const MLFLOW_ENV: &str = "TRADELAB_TEST_MLFLOW";

/// A running `mlflow server`.
pub struct MlflowServer {
    child: Child,
    /// The loopback port it listens on.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl MlflowServer {
    /// Starts a server and waits (up to two minutes) until it answers, or
    /// returns `None`, printing why, when [`MLFLOW_ENV`] is not set.
    pub fn start(test: &str) -> Option<MlflowServer> {
        let Ok(mlflow) = std::env::var(MLFLOW_ENV) else {
            eprintln!("skipped: {test} (set {MLFLOW_ENV} to the mlflow executable)");
            return None;
        };
        let dir = tempfile::tempdir().expect("a temporary folder for MLflow");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(&mlflow)
            .args(["server", "--host", "127.0.0.1", "--workers", "1", "--port"])
            .arg(port.to_string())
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.path().join("mlflow.db").display()))
            .arg("--default-artifact-root")
            .arg(dir.path().join("artifacts"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: `mlflow server` forks a web server and
            // workers, which outlive a kill of the parent alone.
            .process_group(0)
            .spawn()
            .expect("mlflow starts");
        let server = MlflowServer { child, port, _dir: dir };
        let start = Instant::now();
        while server.http("GET", "/health", None).is_none_or(|(s, _)| s != 200) {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "mlflow server did not come up"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Some(server)
    }

    /// The id of the server's process group (its first process's id).
    pub fn process_group(&self) -> u32 {
        self.child.id()
    }

    /// Its base URL, as `store.mlflow_url` takes it.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One request to the server: its status and JSON body (`Null` when the
    /// body is not JSON); `None` when it does not answer.
    pub fn http(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .ok()?;
        let mut response = Vec::new();
        s.read_to_end(&mut response).ok()?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.get(9..12)?.parse().ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        // A chunked body: take the JSON between the first chunk size and the end.
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body.split_once("\r\n").map(|(_, rest)| rest).unwrap_or(body)
        } else {
            body
        };
        let end = body.rfind('}').map(|i| i + 1).unwrap_or(body.len());
        Some((status, serde_json::from_str(&body[..end]).unwrap_or(Value::Null)))
    }

    /// A GET or POST to MLflow's REST API (`/api/2.0/mlflow/{path}`) that
    /// must succeed; its JSON answer.
    pub fn api(&self, path: &str, body: Option<&Value>) -> Value {
        let method = if body.is_some() { "POST" } else { "GET" };
        let (status, value) = self
            .http(method, &format!("/api/2.0/mlflow/{path}"), body)
            .expect("mlflow answers");
        assert_eq!(status, 200, "{path}: {value}");
        value
    }
}

impl MlflowServer {
    /// Signals every process of the server's group (`kill -SIG -PGID`).
    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }

    /// Whether any process of the server's group is still alive.
    fn group_alive(&self) -> bool {
        Command::new("kill")
            .args(["-0", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for MlflowServer {
    /// Stops the whole process group, politely and then for good, so no
    /// web server or worker outlives the test (they used to pile up run
    /// after run until memory ran out).
    fn drop(&mut self) {
        self.signal_group("-TERM");
        let start = Instant::now();
        while self.group_alive() && start.elapsed() < Duration::from_secs(5) {
            let _ = self.child.try_wait();
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}
