//! A local stand-in for Alpaca's real-time market-data stream, as its
//! documentation describes it: `[{"T":"success","msg":"connected"}]` on
//! connecting, the `auth` action answered `authenticated` or
//! `{"T":"error","code":402,"msg":"auth failed"}`, a second connection on
//! the account refused with 406 "connection limit exceeded", the
//! `subscribe` action answered with the subscription, then what the test
//! scripts: bar messages, bars published to the REST history (what
//! happened while a client was away), and a dropped connection.

use std::collections::VecDeque;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::fake_alpaca::FakeState;

/// One scripted step of the stream.
pub enum Step {
    /// A message (an array of bars) to the connected client.
    Send(Value),
    /// Bars added to the REST history, by symbol.
    Publish(Vec<(String, Value)>),
    /// The connection closed without a word.
    Drop,
    /// Goes on once the REST history was asked this many times in all
    /// (what the client read before is then settled).
    AwaitHistoryRequests(usize),
    /// The clock says the market is open (true) or closed.
    SetMarketOpen(bool),
    /// Nothing for a while (a night, sped up).
    Pause(Duration),
}

/// What the fake saw and has still to send.
#[derive(Default)]
pub struct StreamState {
    /// What is still to happen, in order, across connections.
    pub script: VecDeque<Step>,
    /// Connections accepted.
    pub connections: usize,
    /// Connections open now.
    pub open: usize,
    /// The symbols of the last subscription.
    pub subscribed: Vec<String>,
}

/// A running fake stream on a local port, sharing its credentials and
/// REST history with a [`FakeAlpaca`](crate::fake_alpaca::FakeAlpaca).
pub struct FakeStream {
    /// `ws://127.0.0.1:PORT/v2/iex`.
    pub url: String,
    /// What it saw and has still to send.
    pub state: Arc<Mutex<StreamState>>,
}

impl FakeStream {
    /// Starts it with `rest`'s credentials and history, playing `script`.
    pub fn start(rest: Arc<Mutex<FakeState>>, script: Vec<Step>) -> FakeStream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("ws://{}/v2/iex", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(StreamState {
            script: script.into(),
            ..Default::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let (state, rest) = (shared.clone(), rest.clone());
                std::thread::spawn(move || serve(tcp, &state, &rest));
            }
        });
        FakeStream { url, state }
    }

    /// Its state, locked.
    pub fn state(&self) -> std::sync::MutexGuard<'_, StreamState> {
        self.state.lock().unwrap()
    }
}

fn say(ws: &mut WebSocket<TcpStream>, v: Value) -> bool {
    ws.send(Message::text(v.to_string())).is_ok()
}

/// The next text message, or `None` when the client left.
fn hear(ws: &mut WebSocket<TcpStream>) -> Option<Value> {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

fn serve(tcp: TcpStream, state: &Mutex<StreamState>, rest: &Mutex<FakeState>) {
    let handle = tcp.try_clone().unwrap();
    let Ok(mut ws) = tungstenite::accept(tcp) else {
        return;
    };
    {
        let mut s = state.lock().unwrap();
        s.connections += 1;
        if s.open > 0 {
            drop(s);
            say(
                &mut ws,
                json!([{"T": "error", "code": 406, "msg": "connection limit exceeded"}]),
            );
            let _ = ws.close(None);
            return;
        }
        s.open += 1;
    }
    if session(&mut ws, &handle, state, rest) {
        state.lock().unwrap().open -= 1;
    }
}

/// Serves one connection; false when it already stopped counting it as
/// open (a refused login, released before the client hears of it, so its
/// next attempt is not taken for a second connection).
fn session(
    ws: &mut WebSocket<TcpStream>,
    tcp: &TcpStream,
    state: &Mutex<StreamState>,
    rest: &Mutex<FakeState>,
) -> bool {
    if !say(ws, json!([{"T": "success", "msg": "connected"}])) {
        return true;
    }
    let Some(auth) = hear(ws) else { return true };
    let good = {
        let r = rest.lock().unwrap();
        auth["action"] == "auth" && auth["key"] == r.key_id.as_str() && auth["secret"] == r.secret.as_str()
    };
    if !good {
        state.lock().unwrap().open -= 1;
        say(ws, json!([{"T": "error", "code": 402, "msg": "auth failed"}]));
        let _ = ws.close(None);
        return false;
    }
    say(ws, json!([{"T": "success", "msg": "authenticated"}]));
    let Some(sub) = hear(ws) else { return true };
    let bars: Vec<String> = sub["bars"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    say(
        ws,
        json!([{"T": "subscription", "trades": [], "quotes": [], "bars": bars}]),
    );
    state.lock().unwrap().subscribed = bars;
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(5)));
    loop {
        let step = state.lock().unwrap().script.pop_front();
        match step {
            Some(Step::Send(m)) => {
                if !say(ws, m) {
                    return true;
                }
            }
            Some(Step::Publish(bars)) => {
                let mut r = rest.lock().unwrap();
                for (symbol, bar) in bars {
                    r.bars.entry(symbol).or_default().push(bar);
                }
            }
            Some(Step::Drop) => return true, // the socket closes unannounced
            Some(Step::SetMarketOpen(open)) => rest.lock().unwrap().market_open = open,
            Some(Step::Pause(d)) => std::thread::sleep(d),
            Some(Step::AwaitHistoryRequests(n)) => {
                let asked = || rest.lock().unwrap().log.iter().filter(|l| l.contains("/bars?")).count();
                let since = std::time::Instant::now();
                while asked() < n && since.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            None => {
                // Nothing scripted: notice a client that left.
                match ws.read() {
                    Ok(Message::Close(_)) => return true,
                    Err(tungstenite::Error::Io(e))
                        if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return true,
                    Ok(_) => {}
                }
            }
        }
    }
}
