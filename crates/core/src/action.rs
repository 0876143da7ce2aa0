//! The five actions an agent (or a rule strategy) can take, and order sides.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// What an agent decides at a bar. Paired with a quantity in (0, 1], the
/// fraction of the risk budget, when the action opens a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// Open a long position (buy); index 0, `BUY_LONG`.
    BuyLong,
    /// Open a short position (sell); index 1, `SELL_SHORT`.
    SellShort,
    /// Sell the whole long position; index 2, `CLOSE_LONG`.
    CloseLong,
    /// Buy back the whole short position; index 3, `CLOSE_SHORT`.
    CloseShort,
    /// Do nothing this bar; index 4, `HOLD`. Always valid.
    Hold,
}

impl Action {
    /// All actions in their canonical index order (the policy head's order).
    pub const ALL: [Action; 5] = [
        Action::BuyLong,
        Action::SellShort,
        Action::CloseLong,
        Action::CloseShort,
        Action::Hold,
    ];

    /// The action's position in [`Action::ALL`] (0..5), the policy head's
    /// output index.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The action at index `i` of [`Action::ALL`], or `None` for `i >= 5`.
    pub fn from_index(i: usize) -> Option<Action> {
        Self::ALL.get(i).copied()
    }

    /// The canonical upper-case name (`BUY_LONG`, ...), as serialised and as
    /// parsed (case-insensitively) by `FromStr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::BuyLong => "BUY_LONG",
            Action::SellShort => "SELL_SHORT",
            Action::CloseLong => "CLOSE_LONG",
            Action::CloseShort => "CLOSE_SHORT",
            Action::Hold => "HOLD",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownAction(s.to_string()))
    }
}

/// The direction of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Raises the signed position ([`Side::sign`] +1): opens a long or
    /// covers a short.
    Buy,
    /// Lowers the signed position ([`Side::sign`] -1): sells a long or opens
    /// a short.
    Sell,
}

impl Side {
    /// +1 for buys, -1 for sells: multiply a positive quantity by it to get
    /// the signed change in position.
    pub fn sign(self) -> f64 {
        match self {
            Side::Buy => 1.0,
            Side::Sell => -1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_names_and_indices() {
        for (i, a) in Action::ALL.into_iter().enumerate() {
            assert_eq!(a.index(), i);
            assert_eq!(Action::from_index(i), Some(a));
            assert_eq!(a.to_string().parse::<Action>().unwrap(), a);
        }
        assert!("BUY".parse::<Action>().is_err());
        assert_eq!(Action::from_index(5), None);
    }
}
