//! Portfolio construction across instruments: hierarchical risk parity
//! over a Ledoit-Wolf shrunk covariance, the risk budgets that cap each
//! instrument's position (issue 21).

pub mod budgets;
pub mod hrp;
pub mod shrinkage;

pub use budgets::RiskBudgets;
pub use hrp::{hrp, Allocation, HrpError, Merge};
pub use shrinkage::{ledoit_wolf, Shrunk};
