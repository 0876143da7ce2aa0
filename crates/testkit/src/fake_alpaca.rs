//! A local stand-in for Alpaca's trading API v2, as its documentation
//! describes the requests and answers used here: the account, positions,
//! market orders (filled at once at the price the test sets), orders by
//! client order id, cancels, fill activities, and the error answers
//! (401 for bad keys, 403 for insufficient buying power, 422 for a
//! duplicate client order id, 429 when rate limited), plus a connection
//! dropped without an answer; and the market-data API's historical bars
//! (`GET /v2/stocks/{symbol}/bars`, paged, ascending or descending).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

/// The fake's state, shared with the test.
#[derive(Default)]
pub struct FakeState {
    /// The key id it accepts.
    pub key_id: String,
    /// The secret it accepts.
    pub secret: String,
    /// The account's cash.
    pub cash: f64,
    /// Each symbol's price, at which market orders fill.
    pub prices: HashMap<String, f64>,
    /// Signed units held per symbol.
    pub positions: HashMap<String, f64>,
    /// Orders received, as Alpaca answers them.
    pub orders: Vec<Value>,
    /// Fill activities, oldest first.
    pub activities: Vec<Value>,
    /// Order posts to answer 403 "insufficient buying power".
    pub reject_next: usize,
    /// Order posts to answer 429.
    pub rate_limit_next: usize,
    /// Order posts whose connection is closed without an answer.
    pub drop_next: usize,
    /// Historical bars by symbol (Alpaca's JSON, ascending `t`).
    pub bars: HashMap<String, Vec<Value>>,
    /// Bars per page of history (Alpaca's `limit` caps it too).
    pub page_size: usize,
    /// Bar requests to answer 429.
    pub bars_rate_limit_next: usize,
    /// What the clock (`GET /v2/clock`) says.
    pub market_open: bool,
    /// Every request as `METHOD path`.
    pub log: Vec<String>,
    /// Every header line seen.
    pub headers: Vec<String>,
}

/// A running fake on a local port.
pub struct FakeAlpaca {
    /// `http://127.0.0.1:PORT`, for the trading and market-data APIs both.
    pub url: String,
    /// Its state, shared with the test (and a [`FakeStream`](crate::fake_alpaca_stream::FakeStream)).
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeAlpaca {
    /// Starts it with `cash` and the prices of `symbols`.
    pub fn start(key_id: &str, secret: &str, cash: f64, prices: &[(&str, f64)]) -> FakeAlpaca {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeState {
            key_id: key_id.into(),
            secret: secret.into(),
            cash,
            prices: prices.iter().map(|(s, p)| (s.to_string(), *p)).collect(),
            page_size: 10_000,
            market_open: true,
            ..Default::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeAlpaca { url, state }
    }

    /// Its state, locked.
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }
}

fn answer(mut stream: TcpStream, status: u16, body: &Value) {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        _ => "Error",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn serve(stream: TcpStream, state: &Mutex<FakeState>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = HashMap::new();
    let mut length = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.insert(k, v);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let mut s = state.lock().unwrap();
    s.log.push(format!("{method} {target}"));
    s.headers.extend(headers.iter().map(|(k, v)| format!("{k}: {v}")));
    let order_post = method == "POST" && target == "/v2/orders";
    if order_post && s.drop_next > 0 {
        s.drop_next -= 1;
        return; // the connection closes with no answer
    }
    if headers.get("apca-api-key-id") != Some(&s.key_id) || headers.get("apca-api-secret-key") != Some(&s.secret) {
        drop(s);
        return answer(
            stream,
            401,
            &json!({"code": 40110000, "message": "request is not authorized"}),
        );
    }
    // Order posts and bar requests each have their own 429 budget.
    let bars_get = method == "GET" && target.starts_with("/v2/stocks/");
    let budget = match (order_post, bars_get) {
        (true, _) => Some(&mut s.rate_limit_next),
        (_, true) => Some(&mut s.bars_rate_limit_next),
        _ => None,
    };
    if let Some(left) = budget.filter(|left| **left > 0) {
        *left -= 1;
        drop(s);
        return answer(
            stream,
            429,
            &json!({"code": 42910000, "message": "rate limit exceeded"}),
        );
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
    };
    let (status, reply) = match (method.as_str(), path) {
        ("GET", "/v2/account") => {
            let marked: f64 = s.positions.iter().map(|(sym, q)| q * s.prices[sym]).sum();
            (200, json!({"status": "ACTIVE", "currency": "USD", "cash": format!("{}", s.cash), "equity": format!("{}", s.cash + marked)}))
        }
        ("GET", "/v2/positions") => (
            200,
            Value::Array(
                s.positions
                    .iter()
                    .filter(|(_, q)| **q != 0.0)
                    .map(|(sym, q)| json!({"symbol": sym, "qty": format!("{}", q.abs()), "side": if *q > 0.0 {"long"} else {"short"}, "avg_entry_price": format!("{}", s.prices[sym])}))
                    .collect(),
            ),
        ),
        ("POST", "/v2/orders") => {
            let o: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let cid = o["client_order_id"].as_str().unwrap_or("").to_string();
            let symbol = o["symbol"].as_str().unwrap_or("").to_string();
            let qty: f64 = o["qty"].as_str().and_then(|q| q.parse().ok()).unwrap_or(f64::NAN);
            if s.orders.iter().any(|x| x["client_order_id"] == cid.as_str()) {
                (422, json!({"code": 40010001, "message": "client_order_id must be unique"}))
            } else if s.reject_next > 0 {
                s.reject_next -= 1;
                (403, json!({"code": 40310000, "message": "insufficient buying power"}))
            } else if !s.prices.contains_key(&symbol) || qty.is_nan() || qty <= 0.0 || o["type"] != "market" {
                (422, json!({"code": 40010001, "message": "invalid order"}))
            } else {
                let price = s.prices[&symbol];
                let signed = if o["side"] == "buy" { qty } else { -qty };
                *s.positions.entry(symbol.clone()).or_default() += signed;
                s.cash -= signed * price;
                let id = format!("order-{}", s.orders.len() + 1);
                let order = json!({"id": id, "client_order_id": cid, "symbol": symbol, "qty": o["qty"], "side": o["side"], "type": "market", "status": "filled", "filled_avg_price": format!("{price}")});
                let n = s.activities.len() + 1;
                s.activities.push(json!({"id": format!("{n:08}::{id}"), "activity_type": "FILL", "type": "fill", "symbol": symbol, "side": o["side"], "qty": o["qty"], "price": format!("{price}"), "order_id": id}));
                s.orders.push(order.clone());
                (200, order)
            }
        }
        ("GET", "/v2/orders:by_client_order_id") => {
            let cid = param("client_order_id").unwrap_or_default();
            match s.orders.iter().find(|o| o["client_order_id"] == cid.as_str()) {
                Some(o) => (200, o.clone()),
                None => (404, json!({"code": 40410000, "message": "order not found"})),
            }
        }
        ("GET", "/v2/clock") => (
            200,
            json!({"timestamp": "2024-01-02T14:30:00Z", "is_open": s.market_open,
                   "next_open": "2024-01-03T14:30:00Z", "next_close": "2024-01-02T21:00:00Z"}),
        ),
        ("GET", p) if p.starts_with("/v2/stocks/") && p.ends_with("/bars") => {
            let symbol = &p["/v2/stocks/".len()..p.len() - "/bars".len()];
            let time = |v: &str| tradelab_data::load::timestamp::TimestampFormat::Iso.parse(v.as_bytes());
            let (start, end) = (
                param("start").and_then(|v| time(&v)).unwrap_or(i64::MIN),
                param("end").and_then(|v| time(&v)).unwrap_or(i64::MAX),
            );
            let limit: usize = param("limit").and_then(|v| v.parse().ok()).unwrap_or(1000);
            let mut picked: Vec<Value> = s
                .bars
                .get(symbol)
                .into_iter()
                .flatten()
                .filter(|b| b["t"].as_str().and_then(time).is_some_and(|t| t >= start && t <= end))
                .cloned()
                .collect();
            if param("sort").as_deref() == Some("desc") {
                picked.reverse();
            }
            let from: usize = param("page_token").and_then(|v| v.parse().ok()).unwrap_or(0);
            let to = (from + limit.min(s.page_size)).min(picked.len());
            let next = (to < picked.len()).then(|| to.to_string());
            (200, json!({"bars": picked[from.min(to)..to], "symbol": symbol, "next_page_token": next}))
        }
        ("DELETE", p) if p.starts_with("/v2/orders/") => (422, json!({"code": 42210000, "message": "order is not cancelable"})),
        ("GET", "/v2/account/activities/FILL") => {
            let all = &s.activities;
            let picked: Vec<Value> = if param("direction").as_deref() == Some("desc") {
                all.last().cloned().into_iter().collect()
            } else {
                let after = param("page_token");
                let start = after
                    .and_then(|a| all.iter().position(|x| x["id"] == a.as_str()).map(|p| p + 1))
                    .unwrap_or(0);
                all[start..].to_vec()
            };
            (200, Value::Array(picked))
        }
        _ => (404, json!({"message": "not found"})),
    };
    drop(s);
    answer(stream, status, &reply);
}
