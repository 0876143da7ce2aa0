//! The events' schema, version [`SCHEMA_VERSION`] (documented in
//! `docs/events.md`; a change that old readers would misread bumps it).
//!
//! An event is JSON: its session, its sequence number in the session
//! (1, 2, ... with no gaps), when it was made, what it is (`event.kind` and
//! `event.data`), the hash of the event before it and its own hash, the
//! SHA-256 of the event's canonical JSON without `hash`. Canonical means
//! serde's output for these types: fields in declaration order, numbers in
//! their shortest exact form, so an event read back and written again
//! hashes the same.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The schema version events are written with.
pub const SCHEMA_VERSION: u32 = 1;

/// The hash the first event of a session chains to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened in a trading session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The schema version it was written with.
    pub schema: u32,
    /// The trading session it belongs to.
    pub session: String,
    /// Its place in the session: 1 for the first, no gaps.
    pub seq: u64,
    /// When it was made, UTC milliseconds.
    pub at_ms: i64,
    /// The bar it concerns, UTC milliseconds, if any.
    pub bar_ts: Option<i64>,
    /// What happened.
    pub event: EventBody,
    /// The previous event's `hash` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of this event's canonical JSON without this field.
    pub hash: String,
}

/// The part of an event its hash covers: everything but the hash.
#[derive(Serialize)]
struct Unsealed<'a> {
    schema: u32,
    session: &'a str,
    seq: u64,
    at_ms: i64,
    bar_ts: Option<i64>,
    event: &'a EventBody,
    prev_hash: &'a str,
}

impl Event {
    /// An event chained to `prev_hash`, its hash computed.
    pub fn seal(
        session: &str,
        seq: u64,
        at_ms: i64,
        bar_ts: Option<i64>,
        mut body: EventBody,
        prev_hash: &str,
    ) -> Event {
        // The inputs' digest is computed here, on the publisher's thread,
        // not on the decision path.
        if let EventBody::Decision(d) = &mut body {
            if d.inputs.sha256.is_empty() {
                d.inputs.sha256 = d.inputs.digest();
            }
        }
        let mut event = Event {
            schema: SCHEMA_VERSION,
            session: session.to_string(),
            seq,
            at_ms,
            bar_ts,
            event: body,
            prev_hash: prev_hash.to_string(),
            hash: String::new(),
        };
        event.hash = event.computed_hash();
        event
    }

    /// The hash its content gives now (differs from `hash` once edited).
    pub fn computed_hash(&self) -> String {
        let unsealed = Unsealed {
            schema: self.schema,
            session: &self.session,
            seq: self.seq,
            at_ms: self.at_ms,
            bar_ts: self.bar_ts,
            event: &self.event,
            prev_hash: &self.prev_hash,
        };
        // Serialising these types cannot fail: no maps with non-string
        // keys, and non-finite floats are written as null.
        let bytes = serde_json::to_vec(&unsealed).unwrap_or_default();
        hex::encode(Sha256::digest(&bytes))
    }

    /// The event's kind: `decision`, `order`, `fill`, ...
    pub fn kind(&self) -> &'static str {
        self.event.kind()
    }

    /// The id consumers deduplicate by: `<session>:<seq>`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.session, self.seq)
    }

    /// The event as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An event from its JSON, or what is wrong with it.
    pub fn from_json(text: &[u8]) -> Result<Event, String> {
        let event: Event = serde_json::from_slice(text).map_err(|e| format!("not an event: {e}"))?;
        if event.schema > SCHEMA_VERSION {
            return Err(format!(
                "event {} was written with schema {}, newer than this build's {SCHEMA_VERSION}: upgrade tradelab",
                event.id(),
                event.schema
            ));
        }
        Ok(event)
    }
}

/// What an event records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum EventBody {
    /// A model decided on a bar.
    Decision(DecisionEvent),
    /// An order went to the broker, was refused by it, or was not sent.
    Order(OrderEvent),
    /// An order filled.
    Fill(FillEvent),
    /// The risk checks' verdict on a decision's orders.
    RiskVerdict(RiskVerdict),
    /// A circuit breaker changed state.
    Breaker(BreakerEvent),
    /// The model deciding changed: loaded at the start, reloaded after
    /// failures.
    Model(ModelEvent),
    /// Anything else the session records: start, resume, reconciliation,
    /// component restarts, end.
    Session(SessionNote),
}

impl EventBody {
    /// The kind's name, as written in `event.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            EventBody::Decision(_) => "decision",
            EventBody::Order(_) => "order",
            EventBody::Fill(_) => "fill",
            EventBody::RiskVerdict(_) => "risk_verdict",
            EventBody::Breaker(_) => "breaker",
            EventBody::Model(_) => "model",
            EventBody::Session(_) => "session",
        }
    }

    /// The instrument it concerns, if one.
    pub fn instrument(&self) -> Option<&str> {
        match self {
            EventBody::Decision(d) => Some(&d.instrument),
            EventBody::Order(o) => Some(&o.instrument),
            EventBody::Fill(f) => Some(&f.instrument),
            EventBody::RiskVerdict(r) => Some(&r.instrument),
            _ => None,
        }
    }
}

/// A model's decision on one instrument's bar, with everything it saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// The instrument's symbol.
    pub instrument: String,
    /// The model, as the session names it (a registered name or a folder).
    pub model: String,
    /// The action the model chose (`BUY_LONG`, `HOLD`, ...).
    pub action: String,
    /// The fraction of the risk budget it chose, in (0, 1].
    pub quantity: f64,
    /// The probability of each action, in `BUY_LONG, SELL_SHORT,
    /// CLOSE_LONG, CLOSE_SHORT, HOLD` order; 0 where masked.
    pub probabilities: [f32; 5],
    /// The critic's estimate of the state's value.
    pub value: f32,
    /// What the model was given.
    pub inputs: DecisionInputs,
}

/// A decision's full inputs: enough to ask the model again and compare.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionInputs {
    /// The normalised feature window, row-major (`bars x features`, oldest
    /// bar first); written as little-endian f32 bytes in standard base64:
    /// exact, and a third of the size of decimal text.
    pub window: Window,
    /// Rows of the window.
    pub bars: u32,
    /// Columns of the window.
    pub features: u32,
    /// Equity relative to the start, signed exposure and unrealised P&L
    /// over equity.
    pub account: [f32; 3],
    /// Which actions were allowed, in the order of `probabilities`.
    pub mask: [bool; 5],
    /// The market's instrument and timeframe rows in the model's vocabulary.
    pub market: [u32; 2],
    /// The bar's close, the position held, equity and cash: what the
    /// decision's orders were sized from.
    pub close: f64,
    /// Units held before the decision (negative: short).
    pub position: f64,
    /// Equity before the decision.
    pub equity: f64,
    /// Cash before the decision.
    pub cash: f64,
    /// SHA-256 (hex) of the window bytes, the account, the mask and the
    /// market: the decision's inputs in one figure (filled in when the
    /// event is sealed).
    pub sha256: String,
}

/// A feature window, written as base64 of its little-endian f32 bytes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window(pub Vec<f32>);

impl Window {
    fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.0.len() * 4);
        for v in &self.0 {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes
    }
}

impl Serialize for Window {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(self.bytes()))
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = String::deserialize(d)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&text)
            .map_err(|e| D::Error::custom(format!("the decision's window is not base64: {e}")))?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom(format!(
                "the decision's window holds {} bytes, not a whole number of f32 values",
                bytes.len()
            )));
        }
        Ok(Window(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }
}

impl DecisionInputs {
    /// Inputs holding `window` (`bars` rows); the digest is computed when
    /// the event is sealed.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        window: &[f32],
        bars: usize,
        account: [f32; 3],
        mask: [bool; 5],
        market: [u32; 2],
        close: f64,
        position: f64,
        equity: f64,
        cash: f64,
    ) -> DecisionInputs {
        DecisionInputs {
            window: Window(window.to_vec()),
            bars: bars as u32,
            features: window.len().checked_div(bars).unwrap_or(0) as u32,
            account,
            mask,
            market,
            close,
            position,
            equity,
            cash,
            sha256: String::new(),
        }
    }

    /// SHA-256 (hex) of the window bytes, the account, the mask and the
    /// market.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.window.bytes());
        for a in self.account {
            hasher.update(a.to_le_bytes());
        }
        hasher.update(self.mask.map(u8::from));
        hasher.update(self.market[0].to_le_bytes());
        hasher.update(self.market[1].to_le_bytes());
        hex::encode(hasher.finalize())
    }

    /// The window's values, or why they do not fill `bars x features`.
    pub fn window_values(&self) -> Result<&[f32], String> {
        let expected = self.bars as usize * self.features as usize;
        if self.window.0.len() != expected {
            return Err(format!(
                "the decision's window holds {} values; {} x {} were recorded",
                self.window.0.len(),
                self.bars,
                self.features
            ));
        }
        Ok(&self.window.0)
    }
}

/// An order, as sent or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Its idempotency key at the broker.
    pub client_order_id: String,
    /// The instrument's symbol.
    pub instrument: String,
    /// `BUY_LONG`, `CLOSE_SHORT`, ...
    pub action: String,
    /// Units asked for; `None`: the whole position.
    pub qty: Option<f64>,
    /// `submitted`, `rejected`, `unconfirmed` (the connection dropped) or
    /// `skipped` (not a kind of order sessions send).
    pub status: String,
    /// The broker's answer or the reason.
    pub detail: Option<String>,
}

/// A fill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FillEvent {
    /// The instrument's symbol.
    pub instrument: String,
    /// The action filled.
    pub action: String,
    /// Units filled.
    pub qty: f64,
    /// `buy` (the position rose) or `sell`.
    pub side: String,
    /// The fill price.
    pub price: f64,
    /// Commission and fees paid.
    pub fee: f64,
}

/// Whether a decision's orders were let through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskVerdict {
    /// The instrument's symbol.
    pub instrument: String,
    /// Orders the decision produced.
    pub orders: u32,
    /// True when they go to the broker.
    pub allowed: bool,
    /// Why not, or which checks passed.
    pub reason: String,
}

/// A breaker's transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerEvent {
    /// Which breaker.
    pub breaker: String,
    /// Its state before.
    pub from: String,
    /// Its state after.
    pub to: String,
    /// What it does while open: hold, flatten, halt.
    pub policy: String,
    /// Why.
    pub reason: String,
}

/// The model deciding, when it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEvent {
    /// `loaded` (the session started or resumed) or `reloaded` (after
    /// failures).
    pub change: String,
    /// The model as the session names it.
    pub model: String,
    /// Its kind (`ppo-lstm`, `hrm`, ...).
    pub kind: String,
    /// SHA-256 (hex) of its weights file: which version decided.
    pub weights_sha256: String,
}

/// Any other session record, free-form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionNote {
    /// `start`, `resume`, `reconcile`, `restart`, `end`, ...
    pub note: String,
    /// Its details.
    pub detail: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision() -> EventBody {
        EventBody::Decision(DecisionEvent {
            instrument: "ORCL".into(),
            model: "m".into(),
            action: "BUY_LONG".into(),
            quantity: 0.3,
            probabilities: [0.7, 0.1, 0.0, 0.0, 0.2],
            value: -0.125,
            inputs: DecisionInputs::new(
                &[0.1, -2.5, 3.0e-8, f32::MAX, 1.0, 0.0],
                3,
                [0.01, 0.5, -0.02],
                [true, true, false, false, true],
                [0, 1],
                101.25,
                0.0,
                1e5,
                1e5,
            ),
        })
    }

    #[test]
    fn an_event_read_back_hashes_the_same_and_an_edit_changes_its_hash() {
        let e = Event::seal("s1", 1, 1_700_000_000_000, Some(5), decision(), GENESIS_HASH);
        assert_eq!(e.hash, e.computed_hash());
        let back = Event::from_json(e.to_json().as_bytes()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.computed_hash(), e.hash);
        let mut edited = back.clone();
        if let EventBody::Decision(d) = &mut edited.event {
            d.probabilities[0] = 0.70000005;
        }
        assert_ne!(edited.computed_hash(), e.hash, "one ulp of one probability shows");
    }

    #[test]
    fn any_figure_read_back_is_the_figure_written_so_the_hash_holds() {
        // Without serde_json's float_roundtrip some of these come back one
        // unit in the last place off, and the event's hash with them.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = f64::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let body = EventBody::Fill(FillEvent {
                instrument: "X".into(),
                action: "BUY_LONG".into(),
                qty: v,
                side: "buy".into(),
                price: v / 3.0,
                fee: (v * 1e-3).abs(),
            });
            let e = Event::seal("s", 1, 0, None, body, GENESIS_HASH);
            let back = Event::from_json(e.to_json().as_bytes()).unwrap();
            assert_eq!(back.computed_hash(), e.hash, "{v:e}");
        }
    }

    #[test]
    fn the_window_comes_back_exactly_and_a_damaged_one_is_named() {
        let e = Event::seal("s1", 1, 0, None, decision(), GENESIS_HASH);
        let back = Event::from_json(e.to_json().as_bytes()).unwrap();
        let EventBody::Decision(d) = &back.event else {
            unreachable!()
        };
        assert_eq!(
            d.inputs.window_values().unwrap(),
            [0.1, -2.5, 3.0e-8, f32::MAX, 1.0, 0.0]
        );
        assert_eq!((d.inputs.bars, d.inputs.features), (3, 2));
        assert_eq!(d.inputs.sha256, d.inputs.digest(), "sealed with its digest");
        assert_eq!(d.inputs.sha256.len(), 64);
        let mut cut = d.inputs.clone();
        cut.window.0.truncate(2);
        assert!(
            cut.window_values().unwrap_err().contains("3 x 2"),
            "names the shape recorded"
        );
        let text = e.to_json();
        let window = serde_json::to_string(&d.inputs.window).unwrap();
        let damaged = text.replace(&window[1..window.len() - 1], "AAA=");
        assert!(Event::from_json(damaged.as_bytes())
            .unwrap_err()
            .contains("whole number"));
    }

    #[test]
    fn an_event_from_a_newer_schema_is_refused_with_what_to_do() {
        let mut e = Event::seal("s1", 1, 0, None, decision(), GENESIS_HASH);
        e.schema = SCHEMA_VERSION + 1;
        let err = Event::from_json(e.to_json().as_bytes()).unwrap_err();
        assert!(err.contains("upgrade"), "{err}");
        assert!(Event::from_json(b"{not json").unwrap_err().contains("not an event"));
    }
}
