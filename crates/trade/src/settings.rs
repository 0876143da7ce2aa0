//! `trade:`: how a trading session keeps its state and when its circuit
//! breakers trip.

use serde::{Deserialize, Serialize};
use tradelab_core::settings::Validator;

/// What a tripped breaker does to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerPolicy {
    /// Send no orders while it is open; keep the positions held.
    Hold,
    /// Close every position, then send no orders while it is open.
    Flatten,
    /// Close every position and end the session (status `halted`): a
    /// person looks before it trades again (`--resume`).
    Halt,
}

impl BreakerPolicy {
    /// As settings spell it.
    pub fn name(self) -> &'static str {
        match self {
            BreakerPolicy::Hold => "hold",
            BreakerPolicy::Flatten => "flatten",
            BreakerPolicy::Halt => "halt",
        }
    }
}

/// Each breaker's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerPolicies {
    /// No bar within `stale_after_bars` timeframes, or the feed failed.
    pub stale_feed: BreakerPolicy,
    /// An instrument skipped more than `max_gap_bars` bars.
    pub data_gap: BreakerPolicy,
    /// A bar that breaks the loader's rules.
    pub bad_bar: BreakerPolicy,
    /// The model failed `model_errors` decisions in a row.
    pub model_errors: BreakerPolicy,
    /// Decisions over `latency_budget_ms`, `latency_breaches` in a row.
    pub latency: BreakerPolicy,
    /// The risk layer's drawdown limit (`risk.max_drawdown`).
    pub drawdown: BreakerPolicy,
    /// The broker rejected `broker_rejections` orders in a row, or the
    /// connection to it failed.
    pub broker: BreakerPolicy,
}

impl Default for BreakerPolicies {
    fn default() -> Self {
        BreakerPolicies {
            stale_feed: BreakerPolicy::Hold,
            data_gap: BreakerPolicy::Hold,
            bad_bar: BreakerPolicy::Hold,
            model_errors: BreakerPolicy::Flatten,
            latency: BreakerPolicy::Hold,
            drawdown: BreakerPolicy::Halt,
            broker: BreakerPolicy::Hold,
        }
    }
}

/// `trade:`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TradeSettings {
    /// Timestamps between checkpoints of the session's state in the store
    /// (1: after every timestamp). Orders are written before they are sent
    /// whatever this is.
    pub checkpoint_every: usize,
    /// Seconds without a heartbeat after which a session no longer holds
    /// its account (it was killed) and may be resumed.
    pub lease_seconds: u64,
    /// The feed is stale after this many timeframes (at the replay speed)
    /// without a bar.
    pub stale_after_bars: f64,
    /// An instrument's gap larger than this many timeframes trips the
    /// data-gap breaker (weekends and holidays of daily bars stay under
    /// the default).
    pub max_gap_bars: f64,
    /// Failed decisions in a row that trip the model breaker (the session
    /// reloads the model from its file each time).
    pub model_errors: usize,
    /// Bar in to order out, in milliseconds.
    pub latency_budget_ms: f64,
    /// Decisions over the budget in a row that trip the latency breaker.
    pub latency_breaches: usize,
    /// Orders rejected in a row that trip the broker breaker.
    pub broker_rejections: usize,
    /// Timestamps an open breaker waits before it lets orders through on
    /// probation (half-open); doubled each time it trips again on
    /// probation, up to 64 times.
    pub cooldown_bars: usize,
    /// Timestamps without the fault, half-open, before a breaker closes.
    pub probation_bars: usize,
    /// Seconds before the first restart of a failed feed or broker
    /// connection; doubled per failed attempt, up to `max_backoff_seconds`.
    pub backoff_seconds: f64,
    /// The longest wait between restarts.
    pub max_backoff_seconds: f64,
    /// Timestamps of returns behind the correlation matrix and the
    /// volatility contributions in a session's status.
    pub correlation_window: usize,
    /// Timestamps between recomputations of them (the matrix costs
    /// instruments squared times the window).
    pub correlation_every: usize,
    /// Each breaker's policy.
    pub policies: BreakerPolicies,
    /// What a journal write survives before the order goes out.
    pub journal_durability: JournalDurability,
    /// Where Alpaca is (`--feed alpaca`, `--broker alpaca`).
    pub alpaca: AlpacaSettings,
}

/// What a trading journal's write survives once it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalDurability {
    /// The process being killed (the OS has the write, not yet the disk):
    /// a power loss can lose the last writes, which the idempotent client
    /// order ids make harmless (a resumed session re-sends them under the
    /// same ids). About ten times faster on SQLite.
    #[default]
    ProcessCrash,
    /// A power loss: every write waits for the disk.
    PowerLoss,
}

/// Alpaca's endpoints and how its live bars are taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlpacaSettings {
    /// The trading API (orders, positions, account): the paper endpoint
    /// unless real money is meant.
    pub trading_url: String,
    /// The market-data REST API (historical bars).
    pub data_url: String,
    /// The real-time stream; its feed must be `source`'s.
    pub stream_url: String,
    /// `iex` (free) or `sip` (the paid consolidated tape).
    pub source: String,
    /// Seconds after a bar's end that a symbol's missing bar is waited for
    /// before the others are handed over without it.
    pub grace_seconds: f64,
    /// Bars of history read before a live session to warm the features up.
    pub history_bars: usize,
}

impl Default for AlpacaSettings {
    fn default() -> Self {
        AlpacaSettings {
            trading_url: crate::alpaca::PAPER_URL.into(),
            data_url: crate::alpaca::DATA_URL.into(),
            stream_url: crate::alpaca::STREAM_URL.into(),
            source: "iex".into(),
            grace_seconds: 5.0,
            history_bars: 1000,
        }
    }
}

impl Default for TradeSettings {
    fn default() -> Self {
        TradeSettings {
            checkpoint_every: 1,
            lease_seconds: 30,
            stale_after_bars: 3.0,
            max_gap_bars: 5.0,
            model_errors: 3,
            latency_budget_ms: 50.0,
            latency_breaches: 5,
            broker_rejections: 3,
            cooldown_bars: 5,
            probation_bars: 5,
            backoff_seconds: 0.5,
            max_backoff_seconds: 30.0,
            correlation_window: 60,
            correlation_every: 20,
            policies: BreakerPolicies::default(),
            journal_durability: JournalDurability::default(),
            alpaca: AlpacaSettings::default(),
        }
    }
}

impl TradeSettings {
    /// Reports the first unusable value.
    pub fn validate(&self, v: &mut Validator) {
        v.int_range("trade.checkpoint_every", self.checkpoint_every, 1, 1_000_000);
        v.int_range("trade.lease_seconds", self.lease_seconds as usize, 2, 86_400);
        v.range("trade.stale_after_bars", self.stale_after_bars, 1.0, 1e6);
        v.range("trade.max_gap_bars", self.max_gap_bars, 1.0, 1e6);
        v.int_range("trade.model_errors", self.model_errors, 1, 1_000_000);
        v.range("trade.latency_budget_ms", self.latency_budget_ms, 0.001, 1e7);
        v.int_range("trade.latency_breaches", self.latency_breaches, 1, 1_000_000);
        v.int_range("trade.broker_rejections", self.broker_rejections, 1, 1_000_000);
        v.int_range("trade.cooldown_bars", self.cooldown_bars, 1, 1_000_000);
        v.int_range("trade.probation_bars", self.probation_bars, 1, 1_000_000);
        v.range("trade.backoff_seconds", self.backoff_seconds, 0.0, 3600.0);
        v.range(
            "trade.max_backoff_seconds",
            self.max_backoff_seconds,
            self.backoff_seconds,
            86_400.0,
        );
        v.int_range("trade.correlation_window", self.correlation_window, 2, 100_000);
        v.int_range("trade.correlation_every", self.correlation_every, 1, 1_000_000);
        let a = &self.alpaca;
        for (key, url) in [
            ("trade.alpaca.trading_url", &a.trading_url),
            ("trade.alpaca.data_url", &a.data_url),
        ] {
            let ok = url.starts_with("https://") || url.starts_with("http://");
            v.check(
                ok,
                key,
                url,
                "is not an HTTP URL",
                "https://... (or http:// for a local fake)",
            );
        }
        let ws = a.stream_url.starts_with("wss://") || a.stream_url.starts_with("ws://");
        v.check(
            ws,
            "trade.alpaca.stream_url",
            &a.stream_url,
            "is not a websocket URL",
            "wss://...",
        );
        let source = ["iex", "sip"].contains(&a.source.as_str());
        v.check(
            source,
            "trade.alpaca.source",
            &a.source,
            "is not an Alpaca feed",
            "iex or sip",
        );
        v.range("trade.alpaca.grace_seconds", self.alpaca.grace_seconds, 0.0, 3600.0);
        v.int_range("trade.alpaca.history_bars", self.alpaca.history_bars, 1, 100_000);
    }
}
