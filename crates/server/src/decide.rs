//! The decision endpoint's logic, apart from HTTP: check a posted
//! observation against the model, build the account inputs and action
//! mask the environment would, and pass the model's choice through the
//! same risk layer a backtest uses.

use serde::{Deserialize, Serialize};
use tradelab_agents::agent::{AgentInput, Decision, MarketKey};
use tradelab_agents::metadata::Provenance;
use tradelab_app::Settings;
use tradelab_core::Action;
use tradelab_core::BarSeries;
use tradelab_data::settings::FeatureSettings;
use tradelab_env::window_from_bars;
use tradelab_env::ActionSpace;
use tradelab_sim::account::Account;
use tradelab_sim::costs::CostModel;
use tradelab_sim::risk::{RiskLayer, RiskLimits};
use utoipa::ToSchema;

use super::problem::Problem;

/// The account the decision is for, in the instrument's currency.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Portfolio {
    /// Cash after paying for the open position.
    pub cash: f64,
    /// Signed units held: positive long, negative short, 0 flat.
    #[serde(default)]
    pub position_units: f64,
    /// Average entry price of the position (ignored when flat).
    #[serde(default)]
    pub avg_price: f64,
    /// The latest price (the last bar's close).
    pub price: f64,
    /// Equity when trading started: the observation's return input.
    pub initial_equity: f64,
    /// Highest equity so far, for the drawdown breaker (default: the larger
    /// of initial and current equity).
    #[serde(default)]
    pub peak_equity: Option<f64>,
}

/// A request for one decision.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// An instrument in the model's vocabulary (see the model's metadata).
    pub instrument: String,
    /// A timeframe in the model's vocabulary, e.g. `1d`.
    pub timeframe: String,
    /// The feature window, oldest row first: `env.window` rows of the
    /// model's features, normalised as in training (what the environment's
    /// observation holds). Send this or `bars`.
    #[serde(default)]
    pub window: Vec<Vec<f32>>,
    /// Or raw bars, oldest first, ending with the latest: the server
    /// computes the model's features and normalises them with the
    /// statistics its checkpoint recorded for this market, exactly as in
    /// training. Send at least the window plus the indicators' warm-up
    /// (the error says how many); exponential averages match training best
    /// with a long history.
    #[serde(default)]
    pub bars: Vec<RawBar>,
    /// The account the decision is for.
    pub portfolio: Portfolio,
}

/// One OHLCV bar of the `bars` form.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBar {
    /// First price.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Last price.
    pub close: f64,
    /// Quantity traded (0 when unknown).
    #[serde(default)]
    pub volume: f64,
}

/// What the decision endpoint needs of a loaded model to build a window
/// from raw bars.
pub struct BarsContext<'a> {
    /// The model's feature settings (from its metadata).
    pub features: Option<&'a FeatureSettings>,
    /// The model's provenance: feature names and normalisation.
    pub provenance: &'a Provenance,
}

/// One risk rule's verdict.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RiskCheck {
    /// `drawdown_circuit_breaker` or `entry_limits`.
    pub rule: String,
    /// Whether the rule let the decision through in full.
    pub passed: bool,
    /// The figures behind the verdict, or the reason for a cut or refusal.
    pub detail: String,
}

/// What the model chose and what the risk layer let through.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RiskOutcome {
    /// The action to take after the risk layer.
    #[schema(value_type = String)]
    pub action: Action,
    /// Units to open (entries only; 0 otherwise).
    pub units: f64,
    /// Each rule's verdict, in the order applied.
    pub checks: Vec<RiskCheck>,
}

/// The model's expected input shape.
pub struct Shape {
    /// Rows in the observation window (`env.window` at training).
    pub window: usize,
    /// Feature values per row.
    pub features: usize,
}

fn finite(name: &str, x: f64) -> Result<f64, Problem> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Problem::unprocessable(format!(
            "portfolio.{name} must be a finite number"
        )))
    }
}

impl Portfolio {
    fn check(&self) -> Result<(), Problem> {
        finite("cash", self.cash)?;
        finite("position_units", self.position_units)?;
        finite("avg_price", self.avg_price)?;
        if finite("price", self.price)? <= 0.0 {
            return Err(Problem::unprocessable("portfolio.price must be positive"));
        }
        if finite("initial_equity", self.initial_equity)? <= 0.0 {
            return Err(Problem::unprocessable("portfolio.initial_equity must be positive"));
        }
        if self.position_units != 0.0 && self.avg_price <= 0.0 {
            return Err(Problem::unprocessable(
                "portfolio.avg_price must be positive when a position is held",
            ));
        }
        if let Some(p) = self.peak_equity {
            finite("peak_equity", p)?;
        }
        // Finite fields can still multiply to infinity (issue 19 finding 6:
        // one such request failed a whole audit batch): every figure the
        // decision derives must be finite too, in f32 where the model reads it.
        let derived = [
            ("equity (cash + position_units × price)", self.equity()),
            ("exposure (position_units × price)", self.position_units * self.price),
            (
                "cost basis (cash + position_units × avg_price)",
                self.cash + self.position_units * self.avg_price,
            ),
            ("unrealised P&L", self.position_units * (self.price - self.avg_price)),
        ];
        for (what, x) in derived {
            if !x.is_finite() {
                return Err(Problem::unprocessable(format!(
                    "the portfolio's {what} is not a finite number; check the figures' units"
                )));
            }
        }
        if self.account_features().iter().any(|f| !f.is_finite()) {
            return Err(Problem::unprocessable(
                "the portfolio's figures are too large to read as model inputs (return, exposure or P&L beyond f32); check the figures' units",
            ));
        }
        Ok(())
    }

    /// Cash plus the position marked at `price`.
    pub fn equity(&self) -> f64 {
        self.cash + self.position_units * self.price
    }

    /// The account the broker would hold: the position bought at its
    /// average price, marked at the latest one.
    fn account(&self) -> Account {
        let mut a = Account::new(self.cash + self.position_units * self.avg_price, 1, CostModel::free());
        if self.position_units != 0.0 {
            let side = if self.position_units > 0.0 {
                Action::BuyLong
            } else {
                Action::SellShort
            };
            a.fill(0, 0, side, self.position_units, self.avg_price);
        }
        a.set_mark(0, self.price);
        a
    }

    /// The environment's account inputs: return since start, exposure,
    /// unrealised P&L as a share of equity.
    pub fn account_features(&self) -> [f32; tradelab_env::ACCOUNT_FEATURES] {
        tradelab_env::account_features(
            self.equity(),
            self.initial_equity,
            self.position_units * self.price,
            self.position_units * (self.price - self.avg_price),
        )
    }

    /// What a model reading its outputs as `actions` may choose with this
    /// position (the environment's mask).
    pub fn mask(&self, actions: ActionSpace) -> [bool; 5] {
        actions.mask(self.position_units)
    }
}

/// Validates the request against the model's shape and flattens the window.
pub fn flatten_window(req: &DecisionRequest, shape: &Shape) -> Result<Vec<f32>, Problem> {
    req.portfolio.check()?;
    if !req.window.is_empty() && !req.bars.is_empty() {
        return Err(Problem::unprocessable("send `window` or `bars`, not both"));
    }
    if req.window.len() != shape.window {
        return Err(Problem::unprocessable(format!(
            "window has {} rows; this model reads {} (env.window at training)",
            req.window.len(),
            shape.window
        )));
    }
    let mut flat = Vec::with_capacity(shape.window * shape.features);
    for (i, row) in req.window.iter().enumerate() {
        if row.len() != shape.features {
            return Err(Problem::unprocessable(format!(
                "window row {i} has {} values; this model reads {} features (listed in its metadata)",
                row.len(),
                shape.features
            )));
        }
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(Problem::unprocessable(format!(
                "window row {i}, feature {j} is not a finite number"
            )));
        }
        flat.extend_from_slice(row);
    }
    Ok(flat)
}

/// The observation window of a request: its `window` as sent, or built
/// from its `bars` with the model's features and normalisation.
pub fn observation(req: &DecisionRequest, shape: &Shape, model: &BarsContext<'_>) -> Result<Vec<f32>, Problem> {
    if req.bars.is_empty() {
        return flatten_window(req, shape);
    }
    req.portfolio.check()?;
    if !req.window.is_empty() {
        return Err(Problem::unprocessable("send `window` or `bars`, not both"));
    }
    let norm = model
        .provenance
        .normalisation_of(&req.instrument, &req.timeframe)
        .ok_or_else(|| {
            Problem::unprocessable(format!(
                "this model records no normalisation for {} {} (trained before checkpoints recorded it, or never on this market): send the normalised `window` instead",
                req.instrument, req.timeframe
            ))
        })?;
    let features = model.features.ok_or_else(|| {
        Problem::unprocessable(
            "this model's metadata holds no readable feature settings: send the normalised `window` instead",
        )
    })?;
    let mut series = BarSeries::with_capacity(req.instrument.clone(), req.bars.len());
    for (i, b) in req.bars.iter().enumerate() {
        let prices = [b.open, b.high, b.low, b.close];
        if prices.iter().any(|p| !(p.is_finite() && *p > 0.0)) || !(b.volume.is_finite() && b.volume >= 0.0) {
            return Err(Problem::unprocessable(format!(
                "bar {i}: prices must be positive finite numbers and volume a finite number >= 0"
            )));
        }
        if b.high < b.low || b.high < b.open.max(b.close) || b.low > b.open.min(b.close) {
            return Err(Problem::unprocessable(format!(
                "bar {i}: high must be the highest price and low the lowest"
            )));
        }
        series.push(tradelab_core::Bar {
            ts: i as i64,
            open: b.open,
            high: b.high,
            low: b.low,
            close: b.close,
            volume: b.volume,
        });
    }
    window_from_bars(
        &series,
        features,
        &model.provenance.features,
        &norm.mean,
        &norm.std,
        shape.window,
    )
    .map_err(Problem::unprocessable)
}

/// The agent's input: the flattened `window`, the portfolio's account
/// features and action mask for `actions`, and the `market` key.
pub fn input<'a>(window: &'a [f32], p: &Portfolio, market: MarketKey, actions: ActionSpace) -> AgentInput<'a> {
    AgentInput {
        window,
        account: p.account_features(),
        mask: p.mask(actions),
        market,
    }
}

/// Passes `decision` through the risk layer configured in `settings`: the
/// drawdown breaker (which flattens and blocks entries), then the position,
/// single-asset and leverage caps on the entry's size.
pub fn apply_risk(settings: &Settings, instrument: &str, decision: &Decision, p: &Portfolio) -> RiskOutcome {
    let limits = RiskLimits::from_settings(&settings.risk);
    let equity = p.equity();
    let peak = p.peak_equity.unwrap_or(p.initial_equity).max(equity);
    let mut layer = RiskLayer::new(limits, peak);
    let tripped = layer.end_bar(0, equity);
    let mut checks = Vec::new();
    let breaker_detail = if limits.enabled && limits.max_drawdown > 0.0 {
        format!(
            "equity {equity:.2} vs peak {peak:.2}: drawdown {:.2}% (breaker at {:.1}%)",
            100.0 * (1.0 - equity / peak),
            100.0 * limits.max_drawdown
        )
    } else {
        "drawdown breaker off".to_string()
    };
    checks.push(RiskCheck {
        rule: "drawdown_circuit_breaker".into(),
        passed: !tripped,
        detail: breaker_detail,
    });
    if tripped {
        // The engine flattens on a trip; a flat account just waits.
        let action = if p.position_units > 0.0 {
            Action::CloseLong
        } else if p.position_units < 0.0 {
            Action::CloseShort
        } else {
            Action::Hold
        };
        return RiskOutcome {
            action,
            units: 0.0,
            checks,
        };
    }
    match decision.action {
        Action::BuyLong | Action::SellShort => {
            let cfg = settings.env_config();
            let q = decision.quantity.clamp(0.0, 1.0);
            let requested = cfg
                .engine
                .costs
                .affordable_quantity(q * cfg.risk_budget() * equity.max(0.0), p.price);
            let account = p.account();
            // Whole lots, as the broker would fill, unless the instrument trades fractionally.
            let lots = cfg.engine.instrument_lots.get(instrument).unwrap_or(&cfg.engine.lots);
            let allowed = lots.round(layer.allow_entry(0, 0, decision.action, requested, p.price, &account));
            let detail = match layer.events.last() {
                Some(e) => e.reason.to_string(),
                None => format!(
                    "{requested:.4} units ({:.1}% of equity) within every limit",
                    100.0 * requested * p.price / equity.max(f64::MIN_POSITIVE)
                ),
            };
            checks.push(RiskCheck {
                rule: "entry_limits".into(),
                passed: layer.events.is_empty() && requested > 0.0,
                detail,
            });
            if allowed > 0.0 {
                RiskOutcome {
                    action: decision.action,
                    units: allowed,
                    checks,
                }
            } else {
                RiskOutcome {
                    action: Action::Hold,
                    units: 0.0,
                    checks,
                }
            }
        }
        Action::CloseLong | Action::CloseShort if decision.quantity < 1.0 => {
            // Part of the position (an exposure target's trim), in whole lots.
            let cfg = settings.env_config();
            let lots = cfg.engine.instrument_lots.get(instrument).unwrap_or(&cfg.engine.lots);
            let units = lots.round(decision.quantity.max(0.0) * p.position_units.abs());
            RiskOutcome {
                action: if units > 0.0 { decision.action } else { Action::Hold },
                units,
                checks,
            }
        }
        other => RiskOutcome {
            action: other,
            units: 0.0,
            checks,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(cash: f64) -> Portfolio {
        Portfolio {
            cash,
            position_units: 0.0,
            avg_price: 0.0,
            price: 100.0,
            initial_equity: 100_000.0,
            peak_equity: None,
        }
    }

    fn decision(action: Action, quantity: f64) -> Decision {
        Decision {
            action,
            quantity,
            probabilities: [0.2; 5],
            value: 0.0,
        }
    }

    #[test]
    fn a_full_entry_is_held_to_a_quarter_of_equity() {
        let s = Settings::default();
        let out = apply_risk(&s, "x", &decision(Action::BuyLong, 1.0), &flat(100_000.0));
        assert_eq!(out.action, Action::BuyLong);
        // The risk budget is the 25% cap, less what the fees take.
        assert!(out.units > 240.0 && out.units <= 250.0, "{out:?}");
        assert!(out.checks.iter().all(|c| c.passed), "{out:?}");
    }

    #[test]
    fn the_breaker_flattens_and_blocks_entries() {
        let s = Settings::default();
        let mut p = flat(50_000.0);
        p.peak_equity = Some(100_000.0);
        let out = apply_risk(&s, "x", &decision(Action::BuyLong, 1.0), &p);
        assert_eq!((out.action, out.units), (Action::Hold, 0.0));
        assert!(!out.checks[0].passed && out.checks[0].detail.contains("drawdown"));
        p.position_units = 100.0;
        p.avg_price = 100.0;
        p.cash -= 10_000.0;
        let out = apply_risk(&s, "x", &decision(Action::Hold, 0.0), &p);
        assert_eq!(out.action, Action::CloseLong);
    }

    #[test]
    fn entries_beyond_the_cap_are_refused_with_the_rule() {
        let s = Settings::default();
        // Already holding 25% of equity: nothing more may be opened.
        let p = Portfolio {
            cash: 75_000.0,
            position_units: 250.0,
            avg_price: 100.0,
            price: 100.0,
            initial_equity: 100_000.0,
            peak_equity: None,
        };
        assert_eq!(p.mask(ActionSpace::Trade), [false, false, true, false, true]);
        assert_eq!(p.mask(ActionSpace::Target), [true, true, false, false, true]);
        let f = p.account_features();
        assert!((f[1] - 0.25).abs() < 1e-6 && f[0].abs() < 1e-6, "{f:?}");
        // The mask forbids a second entry, but the risk layer would refuse it anyway.
        let out = apply_risk(&s, "x", &decision(Action::BuyLong, 1.0), &p);
        assert_eq!(out.action, Action::Hold);
        assert!(out.checks[1].detail.contains("25.0%"), "{out:?}");
    }

    #[test]
    fn malformed_windows_are_named() {
        let shape = Shape { window: 2, features: 3 };
        let req = |window: Vec<Vec<f32>>| DecisionRequest {
            instrument: "x".into(),
            timeframe: "1d".into(),
            window,
            bars: Vec::new(),
            portfolio: flat(1000.0),
        };
        assert_eq!(flatten_window(&req(vec![vec![0.0; 3]; 2]), &shape).unwrap().len(), 6);
        let e = flatten_window(&req(vec![vec![0.0; 3]; 1]), &shape).unwrap_err();
        assert!(e.detail.contains("1 rows") && e.status == 422, "{e:?}");
        let e = flatten_window(&req(vec![vec![0.0; 3], vec![0.0; 4]]), &shape).unwrap_err();
        assert!(e.detail.contains("row 1"), "{e:?}");
        let mut bad = req(vec![vec![0.0; 3]; 2]);
        bad.portfolio.price = -1.0;
        assert!(flatten_window(&bad, &shape).unwrap_err().detail.contains("price"));
    }

    /// Issue 19 finding 6: finite fields whose products overflow are a 422
    /// naming the figure, before the model or the audit trail sees them.
    #[test]
    fn raw_bars_are_checked_and_need_the_models_normalisation() {
        let shape = Shape { window: 2, features: 1 };
        let bar = |close: f64| RawBar {
            open: close,
            high: close + 1.0,
            low: close - 1.0,
            close,
            volume: 0.0,
        };
        let req = |bars: Vec<RawBar>, window: Vec<Vec<f32>>| DecisionRequest {
            instrument: "x".into(),
            timeframe: "1d".into(),
            window,
            bars,
            portfolio: flat(1000.0),
        };
        let provenance = Provenance::default();
        let features = FeatureSettings::default();
        let with = |features| BarsContext {
            features,
            provenance: &provenance,
        };
        let detail = |r: Result<Vec<f32>, Problem>| r.unwrap_err().detail;
        let both = req(vec![bar(10.0)], vec![vec![0.0]]);
        assert!(detail(observation(&both, &shape, &with(Some(&features)))).contains("not both"));
        let bars = req(vec![bar(10.0); 3], Vec::new());
        let e = detail(observation(&bars, &shape, &with(Some(&features))));
        assert!(
            e.contains("records no normalisation for x 1d") && e.contains("`window`"),
            "{e}"
        );
        let mut known = Provenance::default();
        known.normalisation.push(tradelab_agents::metadata::Normalisation {
            instrument: "x".into(),
            timeframe: "1d".into(),
            mean: Vec::new(),
            std: Vec::new(),
        });
        let ctx = BarsContext {
            features: None,
            provenance: &known,
        };
        assert!(detail(observation(&bars, &shape, &ctx)).contains("no readable feature settings"));
        let ctx = BarsContext {
            features: Some(&features),
            provenance: &known,
        };
        let mut inverted = bar(10.0);
        inverted.high = 5.0;
        let e = detail(observation(&req(vec![bar(10.0), inverted], Vec::new()), &shape, &ctx));
        assert!(e.contains("bar 1: high must be the highest"), "{e}");
        let e = detail(observation(&req(vec![bar(f64::NAN)], Vec::new()), &shape, &ctx));
        assert!(e.contains("bar 0: prices must be positive"), "{e}");
    }

    #[test]
    fn portfolios_whose_derived_figures_overflow_are_refused() {
        let shape = Shape { window: 1, features: 1 };
        let with = |edit: fn(&mut Portfolio)| {
            let mut p = flat(1000.0);
            edit(&mut p);
            let req = DecisionRequest {
                instrument: "x".into(),
                timeframe: "1d".into(),
                window: vec![vec![0.0]],
                bars: Vec::new(),
                portfolio: p,
            };
            flatten_window(&req, &shape)
                .map(|_| ())
                .map_err(|e| (e.status, e.detail))
        };
        let e = with(|p| {
            p.position_units = 1e300;
            p.avg_price = 1.0;
            p.price = 1e300;
        })
        .unwrap_err();
        assert_eq!(e.0, 422);
        assert!(e.1.contains("equity"), "{}", e.1);
        let e = with(|p| {
            p.cash = -1e308;
            p.position_units = 1e300;
            p.avg_price = 1e10;
        })
        .unwrap_err();
        assert!(e.1.contains("cost basis") || e.1.contains("equity"), "{}", e.1);
        // Finite in f64, infinite as the model's f32 inputs.
        let e = with(|p| {
            p.cash = 1e300;
            p.initial_equity = 1e-10;
        })
        .unwrap_err();
        assert!(e.1.contains("too large"), "{}", e.1);
        assert!(with(|_| {}).is_ok());
    }
}
