use crate::settings::MomentumSettings;
use tradelab_core::{Action, BarSeries};

use crate::strategy::{BarContext, Strategy};

/// Time-series momentum: long while the return over the last `lookback`
/// bars exceeds `threshold`, short (if allowed) while it is below
/// `-threshold`, flat otherwise.
pub struct Momentum {
    cfg: MomentumSettings,
    /// Ring buffers of the last `lookback + 1` closes, one per instrument.
    closes: Vec<Vec<f64>>,
    seen: Vec<usize>,
}

impl Momentum {
    /// The strategy with these settings; per-instrument state is allocated
    /// in [`Strategy::start`].
    pub fn new(cfg: &MomentumSettings) -> Self {
        Momentum {
            cfg: cfg.clone(),
            closes: Vec::new(),
            seen: Vec::new(),
        }
    }
}

impl Strategy for Momentum {
    fn name(&self) -> String {
        format!("momentum({})", self.cfg.lookback)
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        self.closes = feeds.iter().map(|_| vec![0.0; self.cfg.lookback + 1]).collect();
        self.seen = vec![0; feeds.len()];
    }

    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        let i = ctx.instrument;
        let n = self.cfg.lookback + 1;
        let seen = self.seen[i];
        self.closes[i][seen % n] = ctx.bar.close;
        self.seen[i] = seen + 1;
        if seen < self.cfg.lookback {
            return;
        }
        // The slot after the newest holds the close `lookback` bars ago.
        let past = self.closes[i][(seen + 1) % n];
        let ret = ctx.bar.close / past - 1.0;
        let t = self.cfg.threshold;
        if ret > t {
            ctx.act(Action::BuyLong);
        } else if self.cfg.allow_short && ret < -t {
            ctx.act(Action::SellShort);
        } else if ctx.position > 0.0 {
            ctx.act(Action::CloseLong);
        } else if ctx.position < 0.0 && ret >= -t {
            ctx.act(Action::CloseShort);
        }
    }
}
