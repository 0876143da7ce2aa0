//! The settings one backtest reads, and how a combination of searched
//! values changes them: a parameter is a key of `strategies:`,
//! `backtest:` or `risk:`, set through the same serde forms and range
//! checks as the settings file, so a combination is exactly the backtest
//! `tradelab --set KEY=VALUE backtest` would run.

use serde_json::Value;
use tradelab_core::settings::first_error;
use tradelab_data::settings::DataSettings;

use super::space::{Kind, Param, ParamSpec};
use super::SearchError;
use crate::engine::EngineConfig;
use crate::settings::{BacktestSettings, RiskSettings, StrategySettings};
use crate::strategies::{baseline, BASELINES};
use crate::strategy::Strategy;

/// The sections a search may vary; `data:` is fixed (the bars are loaded once).
const SECTIONS: [&str; 3] = ["strategies", "backtest", "risk"];

/// Everything a backtest of one baseline reads from the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BacktestSetup {
    /// The baseline's name (`sma_crossover`), as `backtest --strategy` takes it.
    pub strategy: String,
    /// `strategies:`.
    pub strategies: StrategySettings,
    /// `backtest:`.
    pub backtest: BacktestSettings,
    /// `risk:`.
    pub risk: RiskSettings,
    /// `data:` (lot rules).
    pub data: DataSettings,
}

/// The section of `strategies:` a baseline reads its parameters from.
fn strategy_section(strategy: &str) -> Option<&'static str> {
    match strategy {
        "sma_crossover" => Some("sma_crossover"),
        "rsi_mean_reversion" => Some("rsi_mean_reversion"),
        "momentum" => Some("momentum"),
        "buy_and_hold_vol_target" | "momentum_vol_target" => Some("volatility_target"),
        _ => None,
    }
}

impl BacktestSetup {
    /// A setup for `strategy` (hyphens read as underscores); an unknown
    /// name is refused with the names that exist.
    pub fn new(
        strategy: &str,
        strategies: StrategySettings,
        backtest: BacktestSettings,
        risk: RiskSettings,
        data: DataSettings,
    ) -> Result<BacktestSetup, SearchError> {
        let strategy = strategy.replace('-', "_");
        if !BASELINES.contains(&strategy.as_str()) {
            return Err(SearchError::new(format!(
                "unknown strategy `{strategy}`; choose one of: {}",
                BASELINES.join(", ")
            )));
        }
        Ok(BacktestSetup {
            strategy,
            strategies,
            backtest,
            risk,
            data,
        })
    }

    /// The broker these settings describe.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig::new(&self.backtest, &self.risk, &self.data)
    }

    /// The baseline these settings describe, computing its own indicators.
    pub fn strategy(&self) -> Box<dyn Strategy> {
        baseline(&self.strategy, &self.strategies).expect("the name was checked in BacktestSetup::new")
    }

    fn sections(&self) -> Value {
        serde_json::json!({
            "strategies": serde_json::to_value(&self.strategies).unwrap_or_default(),
            "backtest": serde_json::to_value(&self.backtest).unwrap_or_default(),
            "risk": serde_json::to_value(&self.risk).unwrap_or_default(),
        })
    }

    /// Resolves each `--param` to a settings key and type: a bare name is
    /// one of the strategy's own parameters (`fast` is
    /// `strategies.sma_crossover.fast`); a key path names any setting of
    /// `strategies:`, `backtest:` or `risk:`.
    pub fn resolve(&self, specs: &[ParamSpec], random: bool) -> Result<Vec<Param>, SearchError> {
        let sections = self.sections();
        let own = strategy_section(&self.strategy);
        let own_names = || -> String {
            own.and_then(|s| sections["strategies"][s].as_object())
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_else(|| "none".into())
        };
        let mut out: Vec<Param> = Vec::new();
        for spec in specs {
            let key = if spec.name.contains('.') {
                let first = spec.name.split('.').next().unwrap_or_default();
                if !SECTIONS.contains(&first) {
                    return Err(SearchError::new(format!(
                        "--param {}: only strategies, backtest and risk settings can be searched (the data is loaded once for every combination)",
                        spec.name
                    )));
                }
                spec.name.clone()
            } else {
                match own {
                    Some(section) => format!("strategies.{section}.{}", spec.name),
                    None => String::new(),
                }
            };
            let current = (!key.is_empty()).then(|| lookup(&sections, &key)).flatten();
            let Some(current) = current else {
                return Err(SearchError::new(format!(
                    "unknown parameter `{}` for {}; its parameters: {}; or name a setting by its key (e.g. backtest.costs.percent, risk.max_drawdown)",
                    spec.name,
                    self.strategy,
                    own_names()
                )));
            };
            let Some(kind) = Kind::of(current) else {
                return Err(SearchError::new(format!(
                    "--param {}: `{key}` is a section, not a single setting; name a key inside it",
                    spec.name
                )));
            };
            if out.iter().any(|p| p.key == key) {
                return Err(SearchError::new(format!(
                    "--param {}: `{key}` is searched twice",
                    spec.name
                )));
            }
            out.push(Param::resolve(spec, key, kind, random)?);
        }
        Ok(out)
    }

    /// These settings with `values` (one per parameter) set, checked as the
    /// settings file is; a refusal names the combination and the rule.
    pub fn with(&self, params: &[Param], values: &[Value]) -> Result<BacktestSetup, SearchError> {
        let mut sections = self.sections();
        for (p, v) in params.iter().zip(values) {
            let mut node = &mut sections;
            for part in p.key.split('.') {
                node = &mut node[part];
            }
            *node = v.clone();
        }
        let shown = || {
            params
                .iter()
                .zip(values)
                .map(|(p, v)| format!("{}={v}", p.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let read = |section: &str, e: serde_json::Error| {
            SearchError::new(format!("the combination {} is not valid in `{section}:`: {e}", shown()))
        };
        let mut out = self.clone();
        let touched = |section: &str| params.iter().any(|p| p.key.split('.').next() == Some(section));
        if touched("strategies") {
            out.strategies =
                serde_json::from_value(sections["strategies"].take()).map_err(|e| read("strategies", e))?;
        }
        if touched("backtest") {
            out.backtest = serde_json::from_value(sections["backtest"].take()).map_err(|e| read("backtest", e))?;
        }
        if touched("risk") {
            out.risk = serde_json::from_value(sections["risk"].take()).map_err(|e| read("risk", e))?;
        }
        let problem = first_error(|v| {
            out.strategies.validate(v);
            out.backtest.validate(v);
            out.risk.validate(v);
        });
        match problem {
            None => Ok(out),
            Some(why) => Err(SearchError::new(format!(
                "the combination {} is refused by the settings: {why}; add a --constraint that excludes it (e.g. \"fast < slow\") or narrow the ranges",
                shown()
            ))),
        }
    }
}

fn lookup<'a>(root: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(root, |node, part| node.as_object()?.get(part))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(strategy: &str) -> BacktestSetup {
        crate::optimize::default_setup(strategy)
    }

    fn specs(texts: &[&str]) -> Vec<ParamSpec> {
        texts.iter().map(|t| ParamSpec::parse(t).unwrap()).collect()
    }

    #[test]
    fn bare_names_are_the_strategys_own_and_key_paths_reach_costs_and_risk() {
        let s = setup("sma-crossover");
        let p = s
            .resolve(
                &specs(&[
                    "fast=5:6",
                    "backtest.costs.percent=0:0.001:0.0005",
                    "backtest.fill=next_open,signal_close",
                ]),
                false,
            )
            .unwrap();
        assert_eq!(p[0].key, "strategies.sma_crossover.fast");
        assert_eq!(p[0].kind, Kind::Whole);
        assert_eq!(p[1].kind, Kind::Number);
        assert_eq!(p[2].kind, Kind::Text);
        let set = s
            .with(&p, &[Value::from(6), Value::from(0.0005), Value::from("signal_close")])
            .unwrap();
        assert_eq!(set.strategies.sma_crossover.fast, 6);
        assert_eq!(set.backtest.costs.percent, 0.0005);
        assert_eq!(set.backtest.fill, crate::settings::FillPolicy::SignalClose);
        assert_eq!(set.strategy().name(), "sma_crossover(6,30)");
        let vt = setup("momentum_vol_target")
            .resolve(&specs(&["window=10:20:5"]), false)
            .unwrap();
        assert_eq!(vt[0].key, "strategies.volatility_target.window");
    }

    #[test]
    fn unknown_names_sections_and_refused_combinations_are_explained() {
        let s = setup("sma_crossover");
        let e = |t: &[&str]| s.resolve(&specs(t), false).unwrap_err().to_string();
        assert!(e(&["lookback=5:6"])
            .contains("unknown parameter `lookback` for sma_crossover; its parameters: allow_short, fast, slow"));
        assert!(e(&["data.lot_size=1:2"]).contains("only strategies, backtest and risk"));
        assert!(e(&["backtest.costs=1:2"]).contains("is a section"));
        assert!(e(&["fast=1:2", "strategies.sma_crossover.fast=3:4"]).contains("searched twice"));
        assert!(BacktestSetup::new(
            "martingale",
            StrategySettings::default(),
            BacktestSettings::default(),
            RiskSettings::default(),
            DataSettings::default()
        )
        .unwrap_err()
        .to_string()
        .contains("unknown strategy `martingale`"));
        let p = s.resolve(&specs(&["fast=40:41", "slow=20:21"]), false).unwrap();
        let refused = s.with(&p, &[Value::from(40), Value::from(20)]).unwrap_err().to_string();
        assert!(
            refused
                .contains("fast=40, slow=20 is refused by the settings: setting `strategies.sma_crossover.fast` = 40"),
            "{refused}"
        );
        let p = s.resolve(&specs(&["backtest.fill=next_open,at_noon"]), false).unwrap();
        let bad = s.with(&p, &[Value::from("at_noon")]).unwrap_err().to_string();
        assert!(
            bad.contains("backtest.fill=\"at_noon\" is not valid in `backtest:`"),
            "{bad}"
        );
    }
}
