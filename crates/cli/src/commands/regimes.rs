//! `tradelab regimes`: the regime model of each market, fitted on its
//! training split, and the filtered probabilities of every bar
//! (`tradelab_app::regimes`), as a table or as JSON.

use anyhow::{Context, Result};
use serde_json::json;
use tradelab_app::markets::{load_series, timeframe_name};
use tradelab_app::regimes::MarketRegimes;
use tradelab_core::time::format_datetime;

use crate::cli::{GlobalArgs, RegimesArgs};
use crate::context::load_settings;

pub fn run(g: &GlobalArgs, a: &RegimesArgs) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let series = load_series(&settings, &a.symbols, a.timeframe.as_deref(), g.verbose)?;
    let mut reports = Vec::new();
    for s in &series {
        let r = MarketRegimes::fit(&s.close, settings.env.train_fraction, &settings.regime).with_context(|| {
            format!(
                "fitting the regime model of {} on its training split of {} bars",
                s.instrument,
                s.close.len()
            )
        })?;
        if !a.json {
            print_table(s, &r);
        }
        reports.push(json!({
            "instrument": s.instrument,
            "timeframe": timeframe_name(s),
            "training_bars": r.training_bars,
            "bic": r.detector.bic,
            "states": r.states,
            "ts": s.ts,
            "probabilities": r.probabilities.chunks(r.state_count()).collect::<Vec<_>>(),
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string(&reports)?);
    }
    Ok(())
}

fn print_table(s: &tradelab_core::BarSeries, r: &MarketRegimes) {
    let bic: Vec<String> = r.detector.bic.iter().map(|(n, b)| format!("K={n}: {b:.1}")).collect();
    println!(
        "{} {}: {} states by BIC ({}), fitted on the first {} of {} bars",
        s.instrument,
        timeframe_name(s),
        r.state_count(),
        bic.join(", "),
        r.training_bars,
        s.close.len()
    );
    println!(
        "  {:<5}  {:>10}  {:>14}  {:>6}  {:>6}  {:>16}  {:>6}",
        "state", "return/bar", "volatility/bar", "trend", "stays", "share: training", "after"
    );
    for st in &r.states {
        println!(
            "  {:<5}  {:>+9.3}%  {:>13.2}%  {:>+6.2}  {:>6.3}  {:>15.0}%  {:>5.0}%",
            st.state,
            st.mean_return * 100.0,
            st.volatility * 100.0,
            st.trend_strength,
            st.stay_probability,
            st.share_training * 100.0,
            st.share_after * 100.0,
        );
    }
    let last = s.close.len() - 1;
    let p: Vec<String> = r.at(last).iter().map(|p| format!("{p:.3}")).collect();
    println!(
        "  latest bar {}: p(state) = [{}], most likely {}",
        format_datetime(s.ts[last]),
        p.join(", "),
        r.most_likely(last)
    );
}
