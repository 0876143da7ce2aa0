use tradelab_core::{Action, BarSeries};

use crate::strategy::{BarContext, Strategy};

/// Buys each instrument on its first bar and holds to the end.
#[derive(Debug, Default)]
pub struct BuyAndHold {
    entered: Vec<bool>,
}

impl Strategy for BuyAndHold {
    fn name(&self) -> String {
        "buy_and_hold".into()
    }

    fn start(&mut self, feeds: &[&BarSeries]) {
        self.entered = vec![false; feeds.len()];
    }

    fn on_bar(&mut self, ctx: &mut BarContext<'_>) {
        if !self.entered[ctx.instrument] {
            self.entered[ctx.instrument] = true;
            ctx.act(Action::BuyLong);
        }
    }
}
