//! Alpaca's trading API v2 (paper or live) as a [`Broker`]: orders
//! (`POST /v2/orders` with the session's `client_order_id`,
//! `GET /v2/orders:by_client_order_id`, `DELETE /v2/orders/{id}`),
//! positions (`GET /v2/positions`), the account (`GET /v2/account`) and
//! fills (`GET /v2/account/activities/FILL`, polled after each timestamp).
//!
//! Credentials come from `APCA_API_KEY_ID` and `APCA_API_SECRET_KEY` and
//! never appear in an error or a log. Alpaca keeps the account: the session
//! mirrors positions and cash from its fills for the decisions (marked at
//! the session's own bars), and reconciles with `GET /v2/positions` after
//! a restart.

use std::collections::HashMap;

use serde_json::{json, Value};
use tradelab_core::{Action, Bar, Side};
use tradelab_sim::account::Fill;
use tradelab_sim::order::{Order, OrderQty};

use super::{credentials, message, number, KEY_ID_ENV, SECRET_ENV};
use crate::broker::{AccountView, Broker, BrokerError, OrderState};

/// A connection to an Alpaca account.
pub struct AlpacaBroker {
    base: String,
    key_id: String,
    secret: String,
    agent: ureq::Agent,
    symbols: Vec<String>,
    /// The mirror: units and average price per instrument, cash, marks.
    position: Vec<f64>,
    mark: Vec<f64>,
    cash: f64,
    /// Alpaca's order ids by client order id.
    orders: HashMap<String, String>,
    /// The last fill activity seen (its id: they sort in time).
    fills_after: Option<String>,
    fills: Vec<Fill>,
    last_ts: i64,
}

impl AlpacaBroker {
    /// Connects to `base` (e.g. [`PAPER_URL`]) with the credentials from
    /// the environment, trading `symbols`; reads the account and positions
    /// once, so missing or refused credentials and an unreachable broker
    /// fail here, before anything trades.
    pub fn connect(base: &str, symbols: &[String]) -> Result<Self, BrokerError> {
        let (key_id, secret) = credentials(|name| std::env::var(name).ok())?;
        Self::connect_with(base, symbols, key_id, secret)
    }

    /// [`connect`](Self::connect) with the credentials given.
    pub fn connect_with(base: &str, symbols: &[String], key_id: String, secret: String) -> Result<Self, BrokerError> {
        let agent = super::http_agent();
        let mut broker = AlpacaBroker {
            base: base.trim_end_matches('/').to_string(),
            key_id,
            secret,
            agent,
            symbols: symbols.to_vec(),
            position: vec![0.0; symbols.len()],
            mark: vec![f64::NAN; symbols.len()],
            cash: 0.0,
            orders: HashMap::new(),
            fills_after: None,
            fills: Vec::new(),
            last_ts: 0,
        };
        let account = broker.request("GET", "/v2/account", None)?;
        broker.cash = number(&account["cash"]);
        broker.position = broker.positions()?;
        // Fills before this session are not its own.
        let seen = broker.request("GET", "/v2/account/activities/FILL?direction=desc&page_size=1", None)?;
        broker.fills_after = seen
            .as_array()
            .and_then(|a| a.first())
            .and_then(|f| f["id"].as_str())
            .map(str::to_string);
        Ok(broker)
    }

    /// One request; Alpaca's statuses become [`BrokerError`]s.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, BrokerError> {
        let url = format!("{}{path}", self.base);
        let with_keys = |r: ureq::RequestBuilder<ureq::typestate::WithoutBody>| {
            r.header("APCA-API-KEY-ID", &self.key_id)
                .header("APCA-API-SECRET-KEY", &self.secret)
        };
        let sent = match (method, body) {
            ("GET", _) => with_keys(self.agent.get(&url)).call(),
            ("DELETE", _) => with_keys(self.agent.delete(&url)).call(),
            (_, Some(b)) => self
                .agent
                .post(&url)
                .header("APCA-API-KEY-ID", &self.key_id)
                .header("APCA-API-SECRET-KEY", &self.secret)
                .send_json(b),
            (_, None) => self
                .agent
                .post(&url)
                .header("APCA-API-KEY-ID", &self.key_id)
                .header("APCA-API-SECRET-KEY", &self.secret)
                .send_empty(),
        };
        let mut response = sent.map_err(|e| match e {
            ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                BrokerError::Unreachable(format!("{} ({e})", self.base))
            }
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                BrokerError::Unreachable(format!("{} ({io})", self.base))
            }
            other => BrokerError::Disconnected(format!("{method} {path}: {other}")),
        })?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        match status {
            200..=299 if text.trim().is_empty() => Ok(Value::Null),
            200..=299 => serde_json::from_str(&text)
                .map_err(|e| BrokerError::Disconnected(format!("{method} {path}: unreadable answer: {e}"))),
            401 => Err(BrokerError::Credentials(format!(
                "{}; check {KEY_ID_ENV} and {SECRET_ENV}",
                message(&text)
            ))),
            404 => Ok(Value::Null),
            429 => Err(BrokerError::RateLimited { retry_after_ms: 1000 }),
            403 | 422 => Err(BrokerError::Rejected {
                client_order_id: String::new(),
                reason: message(&text),
            }),
            _ => Err(BrokerError::Disconnected(format!(
                "{method} {path}: HTTP {status}: {}",
                message(&text)
            ))),
        }
    }

    fn index(&self, symbol: &str) -> Option<usize> {
        self.symbols.iter().position(|s| s == symbol)
    }

    /// Sends one market order for `qty` units (`side` buy or sell).
    fn place(&mut self, client_order_id: &str, i: usize, side: &str, qty: f64) -> Result<OrderState, BrokerError> {
        let body = json!({
            "symbol": self.symbols[i], "qty": format!("{qty}"), "side": side, "type": "market",
            "time_in_force": "day", "client_order_id": client_order_id,
        });
        match self.request("POST", "/v2/orders", Some(&body)) {
            Ok(order) => {
                if let Some(id) = order["id"].as_str() {
                    self.orders.insert(client_order_id.to_string(), id.to_string());
                }
                Ok(OrderState::Accepted)
            }
            // Sent before (a restart): Alpaca keeps the first one.
            Err(BrokerError::Rejected { reason, .. }) if reason.contains("client_order_id must be unique") => {
                Ok(OrderState::Accepted)
            }
            Err(BrokerError::Rejected { reason, .. }) => Err(BrokerError::Rejected {
                client_order_id: client_order_id.to_string(),
                reason,
            }),
            Err(e) => Err(e),
        }
    }
}

impl Broker for AlpacaBroker {
    fn account_id(&self) -> String {
        // The key id names the account without revealing the secret.
        format!("alpaca:{}", self.key_id)
    }

    fn fills_from_session_bars(&self) -> bool {
        false
    }

    fn on_bar(&mut self, instrument: usize, bar: Bar) {
        self.mark[instrument] = bar.close;
        self.last_ts = bar.ts;
    }

    fn end_timestamp(&mut self, _ts: i64) -> bool {
        // Fills are read here; a failure is seen again at the next poll.
        let _ = self.read_fills();
        false
    }

    fn view(&self, instrument: usize) -> AccountView {
        let marked: f64 = self
            .position
            .iter()
            .zip(&self.mark)
            .map(|(q, m)| if m.is_finite() { q * m } else { 0.0 })
            .sum();
        AccountView {
            position: self.position[instrument],
            equity: self.cash + marked,
            cash: self.cash,
            unrealized_pnl: 0.0,
            halted: false,
        }
    }

    fn submit(&mut self, client_order_id: &str, order: Order) -> Result<OrderState, BrokerError> {
        let i = order.instrument;
        let held = self.position[i];
        let units = match order.qty {
            OrderQty::Units(u) => u,
            OrderQty::All => held.abs(),
            _ => {
                return Err(BrokerError::Rejected {
                    client_order_id: client_order_id.into(),
                    reason: "the Alpaca broker needs explicit quantities (the agent's sizing)".into(),
                })
            }
        };
        match order.action {
            Action::Hold => Ok(OrderState::Accepted),
            Action::CloseLong if held > 0.0 => self.place(client_order_id, i, "sell", held.min(units)),
            Action::CloseShort if held < 0.0 => self.place(client_order_id, i, "buy", (-held).min(units)),
            Action::CloseLong | Action::CloseShort => Ok(OrderState::Accepted),
            Action::BuyLong | Action::SellShort => {
                let (side, against) = match order.action {
                    Action::BuyLong => ("buy", held < 0.0),
                    _ => ("sell", held > 0.0),
                };
                // Crossing zero: close first, as the paper broker does.
                if against {
                    self.place(&format!("{client_order_id}-x"), i, side, held.abs())?;
                }
                self.place(client_order_id, i, side, units)
            }
        }
    }

    fn cancel(&mut self, client_order_id: &str) -> Result<bool, BrokerError> {
        let Some(id) = self.orders.get(client_order_id).cloned() else {
            return Ok(false);
        };
        self.request("DELETE", &format!("/v2/orders/{id}"), None)?;
        Ok(true)
    }

    fn order_state(&mut self, client_order_id: &str) -> Result<Option<OrderState>, BrokerError> {
        let order = self.request(
            "GET",
            &format!("/v2/orders:by_client_order_id?client_order_id={client_order_id}"),
            None,
        )?;
        Ok(match order["status"].as_str() {
            None => None,
            Some("canceled") | Some("expired") => Some(OrderState::Cancelled),
            Some("rejected") => Some(OrderState::Rejected("rejected by Alpaca".into())),
            Some(_) => Some(OrderState::Accepted),
        })
    }

    fn positions(&mut self) -> Result<Vec<f64>, BrokerError> {
        let held = self.request("GET", "/v2/positions", None)?;
        let mut out = vec![0.0; self.symbols.len()];
        for p in held.as_array().into_iter().flatten() {
            if let Some(i) = p["symbol"].as_str().and_then(|s| self.index(s)) {
                let q = number(&p["qty"]).abs();
                out[i] = if p["side"] == "short" { -q } else { q };
            }
        }
        Ok(out)
    }

    fn balances(&mut self) -> Result<(f64, f64), BrokerError> {
        let a = self.request("GET", "/v2/account", None)?;
        Ok((number(&a["cash"]), number(&a["equity"])))
    }

    fn poll_fills(&mut self, out: &mut Vec<Fill>) -> Result<(), BrokerError> {
        out.append(&mut self.fills);
        Ok(())
    }

    fn reconnect(&mut self) -> Result<(), BrokerError> {
        self.request("GET", "/v2/account", None).map(|_| ())
    }
}

impl AlpacaBroker {
    /// Reads new fill activities into the mirror and the fills queue.
    fn read_fills(&mut self) -> Result<(), BrokerError> {
        let path = match &self.fills_after {
            Some(after) => format!("/v2/account/activities/FILL?direction=asc&page_token={after}"),
            None => "/v2/account/activities/FILL?direction=asc".to_string(),
        };
        let activities = self.request("GET", &path, None)?;
        for a in activities.as_array().into_iter().flatten() {
            if let Some(id) = a["id"].as_str() {
                self.fills_after = Some(id.to_string());
            }
            let Some(i) = a["symbol"].as_str().and_then(|s| self.index(s)) else {
                continue;
            };
            let (qty, price) = (number(&a["qty"]), number(&a["price"]));
            let side = if a["side"] == "buy" { Side::Buy } else { Side::Sell };
            let signed = if side == Side::Buy { qty } else { -qty };
            let before = self.position[i];
            self.position[i] += signed;
            self.cash -= signed * price;
            let action = match (side, before) {
                (Side::Buy, b) if b < 0.0 => Action::CloseShort,
                (Side::Buy, _) => Action::BuyLong,
                (Side::Sell, b) if b > 0.0 => Action::CloseLong,
                (Side::Sell, _) => Action::SellShort,
            };
            self.fills.push(Fill {
                ts: self.last_ts,
                instrument: i,
                action,
                side,
                qty,
                price,
                fee: 0.0,
                is_entry: matches!(action, Action::BuyLong | Action::SellShort),
            });
        }
        Ok(())
    }
}
