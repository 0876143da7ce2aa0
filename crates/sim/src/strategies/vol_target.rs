use tradelab_core::{Action, BarSeries};

use crate::metrics::periods_per_year;
use crate::order::Order;
use crate::settings::VolatilityTargetSettings;
use crate::stats::moments::RunningMoments;
use crate::strategy::{BarContext, Strategy};

/// Which side a volatility-targeted baseline holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Always long: volatility-targeted buy-and-hold.
    Long,
    /// The sign of the return over `momentum_lookback` bars: time-series
    /// momentum (Moskowitz, Ooi and Pedersen, 2012), long or short.
    Momentum,
}

/// A position of `target / realised volatility` of equity (at most
/// `max_weight`) on the side [`Side`] picks, resized only when it drifts
/// more than `rebalance_band` from that aim (so a position may grow to
/// `max_weight x (1 + band)` between resizes, as any held position grows
/// past the risk layer's entry cap when its price rises): the sceptic's baselines, since
/// volatility scaling alone improves a buy-and-hold Sharpe ratio on
/// volatile series (Moreira and Muir, 2017).
pub struct VolatilityTargeted<'a> {
    cfg: VolatilityTargetSettings,
    side: Side,
    /// Per instrument: the last `max(window, lookback) + 1` closes (a ring).
    closes: Vec<Vec<f64>>,
    seen: Vec<usize>,
    /// Per instrument: `sqrt(bars per year)`.
    annualise: Vec<f64>,
    /// Per instrument: the realised volatility of every bar, computed once
    /// for a parameter search ([`volatility_track`]); empty when the
    /// strategy measures it itself.
    shared: Vec<&'a [f64]>,
}

impl VolatilityTargeted<'static> {
    /// The strategy with these settings; per-instrument state is allocated
    /// in [`Strategy::start`].
    pub fn new(cfg: &VolatilityTargetSettings, side: Side) -> Self {
        VolatilityTargeted::with_volatility(cfg, side, Vec::new())
    }
}

impl<'a> VolatilityTargeted<'a> {
    /// The strategy reading each feed's realised volatility from `tracks`
    /// (one [`volatility_track`] per feed, in the engine's order; empty to
    /// measure it itself): the same orders either way.
    pub fn with_volatility(cfg: &VolatilityTargetSettings, side: Side, tracks: Vec<&'a [f64]>) -> Self {
        VolatilityTargeted {
            cfg: cfg.clone(),
            side,
            closes: Vec::new(),
            seen: Vec::new(),
            annualise: Vec::new(),
            shared: tracks,
        }
    }

    fn ring_len(&self) -> usize {
        self.cfg.window.max(self.cfg.momentum_lookback) + 1
    }

    /// The close `back` bars before the newest (`back < ring length`).
    fn close_back(&self, i: usize, back: usize) -> f64 {
        let n = self.ring_len();
        let newest = self.seen[i] - 1;
        self.closes[i][(newest + n - back) % n]
    }

    /// Annualised standard deviation of the last `window` simple returns.
    fn realised_volatility(&self, i: usize) -> f64 {
        let mut m = RunningMoments::default();
        for back in 0..self.cfg.window {
            m.push(self.close_back(i, back) / self.close_back(i, back + 1) - 1.0);
        }
        m.std() * self.annualise[i]
    }
}

/// The annualised realised volatility over the last `window` simple returns
/// at every bar of `closes` (NaN until `window` returns exist), as
/// [`VolatilityTargeted`] measures it on `feed`: the same additions in the
/// same order, so a search can share it across every target and band.
pub fn volatility_track(feed: &BarSeries, window: usize) -> Vec<f64> {
    let annualise = periods_per_year(feed).sqrt();
    let c = &feed.close;
    (0..c.len())
        .map(|k| {
            if k < window {
                return f64::NAN;
            }
            let mut m = RunningMoments::default();
            for back in 0..window {
                m.push(c[k - back] / c[k - back - 1] - 1.0);
            }
            m.std() * annualise
        })
        .collect()
}

impl Strategy for VolatilityTargeted<'_> {
    fn name(&self) -> String {
        match self.side {
            Side::Long => format!("buy_and_hold_vol_target({:.0}%)", self.cfg.target * 100.0),
            Side::Momentum => format!(
                "momentum_vol_target({},{:.0}%)",
                self.cfg.momentum_lookback,
                self.cfg.target * 100.0
            ),
        }
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        let n = self.ring_len();
        self.closes = feeds.iter().map(|_| vec![0.0; n]).collect();
        self.seen = vec![0; feeds.len()];
        self.annualise = feeds.iter().map(|f| periods_per_year(f).sqrt()).collect();
    }

    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let i = ctx.instrument;
        let n = self.ring_len();
        let close = ctx.bar.close;
        self.closes[i][self.seen[i] % n] = close;
        self.seen[i] += 1;
        let needed = match self.side {
            Side::Long => self.cfg.window,
            Side::Momentum => self.cfg.window.max(self.cfg.momentum_lookback),
        };
        if self.seen[i] <= needed || ctx.halted || ctx.equity <= 0.0 || close <= 0.0 {
            return;
        }
        let vol = match self.shared.get(i) {
            Some(track) => track[ctx.index],
            None => self.realised_volatility(i),
        };
        let direction = match self.side {
            Side::Long => 1.0,
            Side::Momentum => {
                let past = self.close_back(i, self.cfg.momentum_lookback);
                (close / past - 1.0).signum()
            }
        };
        let weight = if vol > 0.0 && vol.is_finite() {
            (self.cfg.target / vol).min(self.cfg.max_weight)
        } else {
            0.0
        };
        let aim = direction * weight * ctx.equity / close;
        let held = ctx.position;
        let (buy, sell) = (Action::BuyLong, Action::SellShort);
        if aim == 0.0 {
            if held > 0.0 {
                ctx.act(Action::CloseLong);
            } else if held < 0.0 {
                ctx.act(Action::CloseShort);
            }
        } else if held == 0.0 || held.signum() != aim.signum() {
            // An entry, or a reversal (the engine closes the old side first).
            let action = if aim > 0.0 { buy } else { sell };
            ctx.submit(Order::market(i, action).units(aim.abs()));
        } else if (aim - held).abs() > self.cfg.rebalance_band * held.abs() {
            let more = aim.abs() > held.abs();
            let action = match (held > 0.0, more) {
                (true, true) => buy,
                (true, false) => Action::CloseLong,
                (false, true) => sell,
                (false, false) => Action::CloseShort,
            };
            ctx.submit(Order::market(i, action).units((aim.abs() - held.abs()).abs()));
        }
    }
}

#[cfg(test)]
mod tests {
    use tradelab_core::{Bar, Side as FillSide, Timeframe};

    use super::*;
    use crate::engine::{self, EngineConfig};
    use crate::settings::{BacktestSettings, RiskSettings, StrategySettings};

    /// Daily closes moving ±`small` for `calm` bars, then ±`big`.
    fn two_regimes(calm: usize, wild: usize, small: f64, big: f64, drift: f64) -> BarSeries {
        let mut p = 100.0;
        let mut s: BarSeries = (0..calm + wild)
            .map(|k| {
                let step = if k < calm { small } else { big };
                p *= 1.0 + drift + if k % 2 == 0 { step } else { -step };
                Bar {
                    ts: k as i64 * 86_400_000,
                    open: p,
                    high: p,
                    low: p,
                    close: p,
                    volume: 1e9,
                }
            })
            .collect();
        s.timeframe = Some(Timeframe::DAY);
        s
    }

    fn settings(band: f64) -> VolatilityTargetSettings {
        VolatilityTargetSettings {
            target: 0.10,
            window: 20,
            max_weight: 1.0,
            rebalance_band: band,
            momentum_lookback: 20,
        }
    }

    /// No fees or slippage and no position cap, so weights are exact.
    fn free_engine() -> EngineConfig {
        let mut b = BacktestSettings::default();
        b.costs.entry_fixed = 0.0;
        b.costs.exit_fixed = 0.0;
        b.costs.percent = 0.0;
        b.costs.minimum = 0.0;
        b.slippage.bps = 0.0;
        b.slippage.atr_fraction = 0.0;
        let r = RiskSettings {
            enabled: false,
            ..Default::default()
        };
        EngineConfig::new(&b, &r, &Default::default())
    }

    /// The position (signed units) after each bar's fills.
    fn positions(result: &engine::BacktestResult<'_>) -> Vec<f64> {
        let mut out = Vec::with_capacity(result.timestamps.len());
        let (mut pos, mut f) = (0.0, 0);
        for ts in result.timestamps.iter() {
            while f < result.fills.len() && result.fills[f].ts == *ts {
                let fill = &result.fills[f];
                pos += if fill.side == FillSide::Buy {
                    fill.qty
                } else {
                    -fill.qty
                };
                f += 1;
            }
            out.push(pos);
        }
        out
    }

    #[test]
    fn the_position_scales_with_the_inverse_of_realised_volatility() {
        // ±1% a day is an annualised volatility of about 0.01 sqrt(252):
        // aiming at 10% holds about 63% of equity; at ±2%, about 31%.
        let series = two_regimes(200, 200, 0.01, 0.02, 0.0);
        let mut s = VolatilityTargeted::new(&settings(0.05), Side::Long);
        let result = engine::run(&[&series], &mut s, &free_engine());
        let pos = positions(&result);
        let weight = |k: usize| pos[k] * series.close[k] / result.equity[k];
        let vol = |step: f64| {
            // Alternating +step, -step: sample std of those returns.
            let (a, b) = (step, -step);
            ((a * a + b * b) / 2.0 * 20.0 / 19.0).sqrt() * periods_per_year(&series).sqrt()
        };
        for (k, step) in [(180, 0.01), (390, 0.02)] {
            let expected = 0.10 / vol(step);
            assert!(
                (weight(k) / expected - 1.0).abs() < 0.06,
                "bar {k}: {} vs {expected}",
                weight(k)
            );
        }
        assert!(
            pos[..20].iter().all(|p| *p == 0.0),
            "nothing before a window of returns"
        );
    }

    #[test]
    fn the_band_keeps_resizes_rare_and_the_weight_within_its_cap_and_band() {
        let series = two_regimes(300, 0, 0.01, 0.0, 0.0005);
        let mut capped = settings(0.25);
        capped.max_weight = 0.25;
        let mut s = VolatilityTargeted::new(&capped, Side::Long);
        let result = engine::run(&[&series], &mut s, &free_engine());
        let pos = positions(&result);
        let max_weight = pos
            .iter()
            .zip(series.close.iter().zip(&result.equity))
            .map(|(p, (c, e))| p * c / e)
            .fold(0.0, f64::max);
        assert!(max_weight > 0.25 && max_weight <= 0.25 * 1.25 * 1.01, "{max_weight}");
        // Constant volatility and a slow drift: a handful of resizes, not
        // one a bar.
        assert!(result.fills.len() < 15, "{} fills", result.fills.len());
    }

    #[test]
    fn momentum_holds_the_side_of_its_lookback_return() {
        // Up 0.5% a day for 150 bars, then down 0.5% a day for 150.
        let mut series = two_regimes(150, 0, 0.002, 0.0, 0.005);
        let falling = two_regimes(150, 0, 0.002, 0.0, -0.005);
        let top = *series.close.last().unwrap();
        for (k, c) in falling.close.iter().enumerate() {
            let p = top * c / 100.0;
            series.push(Bar {
                ts: (150 + k) as i64 * 86_400_000,
                open: p,
                high: p,
                low: p,
                close: p,
                volume: 1e9,
            });
        }
        let mut s = VolatilityTargeted::new(&settings(0.25), Side::Momentum);
        assert_eq!(s.name(), "momentum_vol_target(20,10%)");
        let result = engine::run(&[&series], &mut s, &free_engine());
        let pos = positions(&result);
        assert!(pos[100] > 0.0 && pos[140] > 0.0, "long in the rise");
        assert!(pos[200] < 0.0 && pos[290] < 0.0, "short in the fall");
    }

    #[test]
    fn the_file_names_both_baselines() {
        let st = StrategySettings::default();
        let long = VolatilityTargeted::new(&st.volatility_target, Side::Long);
        assert_eq!(long.name(), "buy_and_hold_vol_target(10%)");
    }
}
