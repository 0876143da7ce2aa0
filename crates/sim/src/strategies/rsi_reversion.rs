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
