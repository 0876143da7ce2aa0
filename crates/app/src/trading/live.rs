//! A live session's parts: bars from Alpaca's stream (its history first,
//! which warms the features up with the model's own training statistics),
//! orders to the paper broker or to Alpaca's account.

use anyhow::{bail, Context, Result};
use tradelab_agents::Agent;
use tradelab_core::time::now_ms;
use tradelab_core::{BarSeries, Timeframe};
use tradelab_env::StreamingWindow;
use tradelab_trade::alpaca::market_data::{alpaca_timeframe, bucket_of};
use tradelab_trade::alpaca::{credentials, AlpacaBroker, AlpacaFeed, AlpacaMarketData, StreamConfig};
use tradelab_trade::AgentMarket;

use crate::settings::Settings;

/// What a live session trades on, ready to run.
pub(super) struct LiveMarkets {
    /// Each symbol's history before the session (for the paper broker's
    /// description of the instruments and the report's context).
    pub history: Vec<BarSeries>,
    /// Each symbol's observation, primed.
    pub markets: Vec<AgentMarket>,
    /// The session's bar size.
    pub timeframe_ms: i64,
    /// The first bar the session trades.
    pub start_ts: i64,
    /// The key id and secret.
    keys: (String, String),
}

/// The model's timeframe (one, for a live session) and its size.
fn model_timeframe(agent: &dyn Agent) -> Result<(String, i64)> {
    let p = agent.provenance();
    let mut names: Vec<&str> = p.normalisation.iter().map(|n| n.timeframe.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let [name] = names[..] else {
        bail!(
            "a live session needs the model's normalisation for one timeframe; it records {:?} (models trained before checkpoints recorded it cannot trade live: retrain)",
            names
        );
    };
    let tf: Timeframe = name
        .parse()
        .map_err(|e| anyhow::anyhow!("the model's timeframe `{name}`: {e}"))?;
    Ok((name.to_string(), tf.millis()))
}

/// Reads each symbol's history from Alpaca and primes its observation with
/// the model's features and statistics; `from` (a resumed session's first
/// bar) or now sets where the history ends.
pub(super) fn live_markets(
    settings: &Settings,
    agent: &dyn Agent,
    symbols: &[String],
    from: Option<i64>,
) -> Result<LiveMarkets> {
    let keys = credentials(|name| std::env::var(name).ok()).map_err(|e| match e {
        tradelab_trade::BrokerError::Credentials(missing) => anyhow::anyhow!(missing),
        other => anyhow::anyhow!(other),
    })?;
    let a = &settings.trade.alpaca;
    let (tf_name, tf) = model_timeframe(agent)?;
    if alpaca_timeframe(tf).is_none() {
        bail!("the model trades {tf_name} bars, which Alpaca does not serve (whole minutes, hours or one day)");
    }
    let p = agent.provenance();
    let start_ts = from.unwrap_or_else(|| bucket_of(now_ms(), tf));
    let data = AlpacaMarketData::new(&a.data_url, keys.0.clone(), keys.1.clone(), &a.source);
    let window = settings.env.window;
    let mut history = Vec::with_capacity(symbols.len());
    let mut markets = Vec::with_capacity(symbols.len());
    for symbol in symbols {
        let norm = p
            .normalisation
            .iter()
            .find(|n| n.instrument.eq_ignore_ascii_case(symbol) && n.timeframe == tf_name)
            .with_context(|| {
                format!(
                    "the model records no normalisation for {symbol} {tf_name} (it knows {}): it observes a market with the statistics of its training data, so train it on {symbol} first",
                    p.normalisation.iter().map(|n| n.instrument.as_str()).collect::<Vec<_>>().join(", ")
                )
            })?;
        let key = p
            .vocabulary
            .key(&norm.instrument, &tf_name)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut stream = StreamingWindow::new(&settings.features, &p.features, &norm.mean, &norm.std, window)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // Searched back far enough for the bars wanted through nights,
        // weekends and holidays.
        let span = (a.history_bars as i64 * tf * 4).max(14 * 86_400_000);
        let bars = data
            .last_bars(symbol, tf, a.history_bars, start_ts - span, start_ts)
            .map_err(|e| anyhow::anyhow!("{symbol}'s history: {e}"))?;
        let mut series = BarSeries::with_capacity(symbol.clone(), bars.len());
        series.timeframe = tf_name.parse().ok();
        for bar in &bars {
            if let Some(problem) = tradelab_data::load::bar_problem(bar, series.ts.last().copied()) {
                bail!("{symbol}'s history from Alpaca has a bad bar: {problem}");
            }
            series.push(*bar);
            stream.push(bar);
        }
        if stream.window().is_none() {
            bail!(
                "{} bars of {symbol}'s history do not warm the model's features up (its window is {window} bars); raise trade.alpaca.history_bars",
                bars.len()
            );
        }
        history.push(series);
        markets.push(AgentMarket::streamed(key, stream));
    }
    Ok(LiveMarkets {
        history,
        markets,
        timeframe_ms: tf,
        start_ts,
        keys,
    })
}

impl LiveMarkets {
    /// The stream, backfilled from the session's first bar.
    pub fn feed(&self, settings: &Settings, symbols: &[String]) -> Result<AlpacaFeed> {
        let a = &settings.trade.alpaca;
        let cfg = StreamConfig {
            url: a.stream_url.clone(),
            key_id: self.keys.0.clone(),
            secret: self.keys.1.clone(),
            symbols: symbols.to_vec(),
            timeframe_ms: self.timeframe_ms,
            grace: std::time::Duration::from_secs_f64(a.grace_seconds),
            clock_url: Some(a.trading_url.clone()),
            clock_every: std::time::Duration::from_secs(60),
        };
        let data = AlpacaMarketData::new(&a.data_url, self.keys.0.clone(), self.keys.1.clone(), &a.source);
        AlpacaFeed::connect(cfg, data, self.start_ts).map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Alpaca's account, checked reachable and the keys accepted.
    pub fn broker(&self, settings: &Settings, symbols: &[String]) -> Result<AlpacaBroker> {
        AlpacaBroker::connect_with(
            &settings.trade.alpaca.trading_url,
            symbols,
            self.keys.0.clone(),
            self.keys.1.clone(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}
