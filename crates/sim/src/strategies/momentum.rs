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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testing::signals;

    fn momentum(allow_short: bool) -> Momentum {
        Momentum::new(&MomentumSettings {
            lookback: 2,
            threshold: 0.0,
            allow_short,
        })
    }

    const CLOSES: [f64; 8] = [10.0, 11.0, 12.0, 11.0, 10.0, 9.0, 10.0, 12.0];

    #[test]
    fn long_while_the_lookback_return_is_above_the_threshold_flat_otherwise() {
        assert_eq!(momentum(false).name(), "momentum(2)");
        // Bar 2 is the first with a close two bars back (12 over 10); bar 3
        // is level with bar 1, so the long closes; bar 7 is 12 over 9.
        assert_eq!(
            signals(&mut momentum(false), &CLOSES),
            vec![(2, Action::BuyLong), (3, Action::CloseLong), (7, Action::BuyLong)]
        );
    }

    #[test]
    fn with_shorts_a_falling_return_goes_short_until_it_recovers() {
        assert_eq!(
            signals(&mut momentum(true), &CLOSES),
            vec![
                (2, Action::BuyLong),
                (3, Action::CloseLong),
                (4, Action::SellShort),
                (6, Action::CloseShort),
                (7, Action::BuyLong),
            ]
        );
    }

    #[test]
    fn a_threshold_keeps_small_moves_flat() {
        let mut strict = Momentum::new(&MomentumSettings {
            lookback: 2,
            threshold: 0.5,
            allow_short: true,
        });
        assert_eq!(signals(&mut strict, &CLOSES), vec![]);
    }
}
