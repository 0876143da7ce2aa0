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
        if !r.is_finite() {
            return;
        }
        let c = &self.cfg;
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
