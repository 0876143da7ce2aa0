use crate::settings::RsiMeanReversionSettings;
use tradelab_core::{Action, BarSeries};
use tradelab_data::features::Rsi;

use crate::strategy::{BarContext, Strategy};

/// Buys when Wilder's RSI falls below `oversold` and exits when it recovers
/// above `exit_level`; optionally the mirror image for shorts.
pub struct RsiMeanReversion {
    cfg: RsiMeanReversionSettings,
    rsi: Vec<Rsi>,
}

impl RsiMeanReversion {
    /// The strategy with these settings; per-instrument state is allocated
    /// in [`Strategy::start`].
    pub fn new(cfg: &RsiMeanReversionSettings) -> Self {
        RsiMeanReversion {
            cfg: cfg.clone(),
            rsi: Vec::new(),
        }
    }
}

impl Strategy for RsiMeanReversion {
    fn name(&self) -> String {
        format!("rsi_mean_reversion({})", self.cfg.period)
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        self.rsi = feeds.iter().map(|_| Rsi::new(self.cfg.period)).collect();
    }

    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let r = self.rsi[ctx.instrument].update(ctx.bar.close);
        act_on(&self.cfg, r, ctx);
    }
}

/// The rule, given this bar's RSI.
#[inline(always)]
fn act_on(c: &RsiMeanReversionSettings, r: f64, ctx: &mut BarContext<'_>) {
    if !r.is_finite() {
        return;
    }
    if ctx.position > 0.0 && r > c.exit_level {
        ctx.act(Action::CloseLong);
    } else if ctx.position < 0.0 && r < c.exit_level {
        ctx.act(Action::CloseShort);
    } else if ctx.position == 0.0 && r < c.oversold {
        ctx.act(Action::BuyLong);
    } else if ctx.position == 0.0 && c.allow_short && r > c.overbought {
        ctx.act(Action::SellShort);
    }
}

/// Every bar's `period`-bar RSI over `closes`, from the first: what an
/// [`Rsi`] fed them in order reports, computed once for a parameter search.
pub fn rsi_track(closes: &[f64], period: usize) -> Vec<f64> {
    let mut rsi = Rsi::new(period);
    closes.iter().map(|&c| rsi.update(c)).collect()
}

/// [`RsiMeanReversion`] reading RSI values computed once for many
/// strategies ([`rsi_track`], one per feed in the engine's order): the same
/// decisions on the same bars.
pub struct SharedRsiMeanReversion<'a> {
    cfg: RsiMeanReversionSettings,
    tracks: Vec<&'a [f64]>,
}

impl<'a> SharedRsiMeanReversion<'a> {
    /// The rule under `cfg` over precomputed `cfg.period` tracks.
    pub fn new(cfg: &RsiMeanReversionSettings, tracks: Vec<&'a [f64]>) -> Self {
        SharedRsiMeanReversion {
            cfg: cfg.clone(),
            tracks,
        }
    }
}

impl Strategy for SharedRsiMeanReversion<'_> {
    fn name(&self) -> String {
        format!("rsi_mean_reversion({})", self.cfg.period)
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        assert_eq!(feeds.len(), self.tracks.len(), "one track per feed");
    }

    #[inline(always)]
    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let r = self.tracks[ctx.instrument][ctx.index];
        act_on(&self.cfg, r, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testing::signals;

    fn rsi(allow_short: bool) -> RsiMeanReversion {
        RsiMeanReversion::new(&RsiMeanReversionSettings {
            period: 2,
            oversold: 30.0,
            overbought: 70.0,
            exit_level: 50.0,
            allow_short,
        })
    }

    /// Five falls, then five rises. Wilder's RSI(2) is 0 from bar 2 (the
    /// first with two changes) through the falls, then 50, 75, 87.5, ...
    const CLOSES: [f64; 11] = [10.0, 9.0, 8.0, 7.0, 6.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];

    #[test]
    fn buys_when_oversold_and_exits_once_the_rsi_recovers_past_the_exit_level() {
        assert_eq!(rsi(false).name(), "rsi_mean_reversion(2)");
        // 50 at bar 6 is not above the exit level; 75 at bar 7 is.
        assert_eq!(
            signals(&mut rsi(false), &CLOSES),
            vec![(2, Action::BuyLong), (7, Action::CloseLong)]
        );
    }

    #[test]
    fn a_shared_track_decides_as_the_streaming_rsi_does() {
        let closes: Vec<f64> = (0..300)
            .map(|i| 50.0 + ((i * 31) % 17) as f64 - ((i * 7) % 5) as f64)
            .collect();
        for allow_short in [false, true] {
            let cfg = RsiMeanReversionSettings {
                period: 5,
                oversold: 35.0,
                overbought: 65.0,
                exit_level: 50.0,
                allow_short,
            };
            let track = rsi_track(&closes, cfg.period);
            let mut shared = SharedRsiMeanReversion::new(&cfg, vec![&track]);
            let mut own = RsiMeanReversion::new(&cfg);
            assert_eq!(shared.name(), own.name());
            let want = signals(&mut own, &closes);
            assert!(want.len() > 4);
            assert_eq!(signals(&mut shared, &closes), want);
        }
    }

    #[test]
    fn with_shorts_an_overbought_rsi_goes_short_and_covers_below_the_exit_level() {
        let mut closes = CLOSES.to_vec();
        // Two falls after the rises bring the RSI to 32 (below the exit
        // level: cover) and then 14 (oversold again: long).
        closes.extend([8.0, 6.0]);
        assert_eq!(
            signals(&mut rsi(true), &closes),
            vec![
                (2, Action::BuyLong),
                (7, Action::CloseLong),
                (8, Action::SellShort),
                (11, Action::CloseShort),
                (12, Action::BuyLong),
            ]
        );
    }
}
