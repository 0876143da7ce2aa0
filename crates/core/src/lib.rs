//! Domain vocabulary shared by every tradelab crate.
//!
//! This crate is the bottom of the dependency graph: it knows nothing about
//! files, the ML framework, databases or HTTP. It holds
//!
//! - market data types: [`Bar`], [`BarSeries`] (columnar, so hot loops run
//!   over contiguous slices) and [`Timeframe`];
//! - the trading vocabulary: the five agent [`Action`]s, [`Side`], order kinds;
//! - [`settings`]: how `config/settings.yaml` is loaded in layers and
//!   checked, with errors that name the key path, the value and what is
//!   allowed (each crate owns the section it reads);
//! - [`time`]: calendar arithmetic on UTC millisecond timestamps, and
//!   [`Calendar`]: which days a market trades on.
//!
//! ```
//! use tradelab_core::{Action, Timeframe};
//! assert_eq!(Timeframe::from_millis(300_000).to_string(), "5m");
//! assert_eq!("BUY_LONG".parse::<Action>().unwrap(), Action::BuyLong);
//! ```

#![warn(missing_docs)]

pub mod action;
pub mod bar;
pub mod calendar;
pub mod error;
pub mod settings;
pub mod time;
pub mod timeframe;

pub use action::{Action, Side};
pub use bar::{Bar, BarSeries};
pub use calendar::Calendar;
pub use error::{Error, Result};
pub use timeframe::Timeframe;
