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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategies::testing::signals;

    #[test]
    fn buys_on_the_first_bar_and_never_acts_again() {
        let mut hold = BuyAndHold::default();
        assert_eq!(hold.name(), "buy_and_hold");
        assert_eq!(signals(&mut hold, &[10.0, 5.0, 20.0, 1.0]), vec![(0, Action::BuyLong)]);
    }
}
