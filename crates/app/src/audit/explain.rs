//! One decision's explanation, computed from its recorded inputs by the
//! model that decided: integrated-gradients attributions of the chosen
//! action's log-probability per feature, per bar and per account input
//! (with the completeness check), the regime probabilities the window's
//! last bar carried, a mixture's gate and specialists, the HRM's segments
//! and halting values, and a paragraph that says it in words.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use tradelab_agents::explanation::{Attribution, SegmentView, SpecialistView};
use tradelab_agents::Agent;
use tradelab_bus::DecisionEvent;
use tradelab_core::Action;

/// The explanation document's version; readers refuse a newer one.
pub const EXPLANATION_SCHEMA: u32 = 1;

/// The account inputs' names, in the order the policy reads them.
pub const ACCOUNT_INPUTS: [&str; 3] = ["equity_change", "exposure", "unrealized_pnl"];

/// Bars counted as "recent" in the paragraph.
const RECENT_BARS: usize = 5;

/// A named figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Named {
    /// What it is.
    pub name: String,
    /// Its value.
    pub value: f32,
}

/// The attributions as stored: aggregated, named, with the check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attributions {
    /// `integrated_gradients`.
    pub method: String,
    /// The output explained: `log_prob(ACTION)`.
    pub target: String,
    /// The baseline input: `zeros` (average bars, a flat account at its
    /// starting equity).
    pub baseline: String,
    /// Interpolation points (midpoint rule).
    pub steps: usize,
    /// The explained output at the decision's inputs.
    pub output: f32,
    /// The explained output at the baseline.
    pub baseline_output: f32,
    /// Sum of the attributions minus the output's change from the baseline.
    pub completeness_gap: f32,
    /// Whether the gap is within tolerance.
    pub complete: bool,
    /// Per feature, summed over the window's bars, in the model's feature order.
    pub by_feature: Vec<Named>,
    /// Per bar of the window, oldest first, summed over its features.
    pub by_bar: Vec<f32>,
    /// Per account input.
    pub account: Vec<Named>,
}

/// Everything a forensics worker stores about one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// [`EXPLANATION_SCHEMA`].
    pub schema: u32,
    /// The model's kind (`ppo-lstm`, `hrm`, ...).
    pub model_kind: String,
    /// The action decided.
    pub action: String,
    /// The fraction of the risk budget decided.
    pub quantity: f64,
    /// Each action's probability (BUY_LONG, SELL_SHORT, CLOSE_LONG,
    /// CLOSE_SHORT, HOLD).
    pub probabilities: [f32; 5],
    /// The critic's value estimate.
    pub value: f32,
    /// `None` for models without gradients (the tree and logistic
    /// baselines).
    pub attributions: Option<Attributions>,
    /// The regime probabilities of the window's last bar, when the model
    /// reads them (`regime.features`).
    pub regime_probabilities: Vec<Named>,
    /// A mixture's specialists (gate weight, preferred action).
    pub specialists: Vec<SpecialistView>,
    /// The HRM's reasoning segments, up to the one that halted.
    pub segments: Vec<SegmentView>,
    /// The paragraph.
    pub text: String,
}

fn attributions(at: &Attribution, features: &[String]) -> Attributions {
    let name = |i: usize| features.get(i).cloned().unwrap_or_else(|| format!("feature {i}"));
    Attributions {
        method: "integrated_gradients".into(),
        target: format!("log_prob({})", at.action.as_str()),
        baseline: "zeros".into(),
        steps: at.steps,
        output: at.output,
        baseline_output: at.baseline_output,
        completeness_gap: at.completeness_gap(),
        complete: at.is_complete(),
        by_feature: at
            .by_feature()
            .into_iter()
            .enumerate()
            .map(|(i, value)| Named { name: name(i), value })
            .collect(),
        by_bar: at.by_bar(),
        account: ACCOUNT_INPUTS
            .iter()
            .zip(at.account)
            .map(|(n, value)| Named {
                name: n.to_string(),
                value,
            })
            .collect(),
    }
}

/// Explains decision `d` with `agent` (the model that made it, whose
/// features are named `features`), integrating over `steps` points.
pub fn explain(agent: &mut dyn Agent, features: &[String], d: &DecisionEvent, steps: usize) -> Result<Explanation> {
    let input = super::recorded_input(&d.inputs).map_err(|e| anyhow!(e))?;
    let window = input.window;
    let action: Action = d
        .action
        .parse()
        .map_err(|_| anyhow!("the decision's action `{}` is not one of the five", d.action))?;
    let attributions = agent
        .attribute(&input, action, steps)?
        .map(|at| attributions(&at, features));
    let internals = agent.internals(&input)?;
    let last = &window[window.len().saturating_sub(d.inputs.features as usize)..];
    let regime_probabilities = features
        .iter()
        .zip(last)
        .filter(|(n, _)| n.starts_with("regime_p"))
        .map(|(n, v)| Named {
            name: n.clone(),
            value: *v,
        })
        .collect();
    let mut e = Explanation {
        schema: EXPLANATION_SCHEMA,
        model_kind: agent.kind().to_string(),
        action: d.action.clone(),
        quantity: d.quantity,
        probabilities: d.probabilities,
        value: d.value,
        attributions,
        regime_probabilities,
        specialists: internals.specialists,
        segments: internals.segments,
        text: String::new(),
    };
    e.text = describe(&e);
    Ok(e)
}

fn verb(action: &str, quantity: f64) -> String {
    let share = format!("{:.0}% of the risk budget", quantity * 100.0);
    match action {
        "BUY_LONG" => format!("Bought {share}"),
        "SELL_SHORT" => format!("Sold short {share}"),
        "CLOSE_LONG" => "Closed the long position".into(),
        "CLOSE_SHORT" => "Closed the short position".into(),
        _ => "Held".into(),
    }
}

fn listed(items: &[&Named]) -> String {
    let parts: Vec<String> = items.iter().map(|n| format!("{} ({:+.3})", n.name, n.value)).collect();
    match parts.len() {
        0 => String::new(),
        1 => parts[0].clone(),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

/// The explanation's paragraph, from its figures alone.
pub fn describe(e: &Explanation) -> String {
    let p = Action::ALL
        .iter()
        .position(|a| a.as_str() == e.action)
        .map_or(0.0, |k| e.probabilities[k]);
    let mut clauses = vec![format!(
        "{} (probability {p:.2}, value estimate {:.3})",
        verb(&e.action, e.quantity),
        e.value
    )];
    match &e.attributions {
        Some(a) => {
            // The inputs that moved the log-probability most, by size.
            let mut inputs: Vec<&Named> = a.by_feature.iter().chain(&a.account).collect();
            inputs.sort_by(|x, y| y.value.abs().total_cmp(&x.value.abs()));
            let top: Vec<&Named> = inputs.into_iter().take(3).filter(|n| n.value != 0.0).collect();
            let toward: Vec<&Named> = top.iter().copied().filter(|n| n.value > 0.0).collect();
            let against: Vec<&Named> = top.iter().copied().filter(|n| n.value < 0.0).collect();
            let mut pushed = Vec::new();
            if !toward.is_empty() {
                pushed.push(format!("{} pushed toward {}", listed(&toward), e.action));
            }
            if !against.is_empty() {
                pushed.push(format!("{} pushed against it", listed(&against)));
            }
            if pushed.is_empty() {
                pushed.push("no input moved it from the baseline".into());
            }
            clauses.push(pushed.join(", "));
            let total: f32 = a.by_bar.iter().map(|v| v.abs()).sum();
            let recent = RECENT_BARS.min(a.by_bar.len());
            if total > 0.0 && a.by_bar.len() > recent {
                let share: f32 = a.by_bar[a.by_bar.len() - recent..].iter().map(|v| v.abs()).sum::<f32>() / total;
                clauses.push(format!(
                    "the latest {recent} of {} bars carried {:.0}% of the window's attribution",
                    a.by_bar.len(),
                    share * 100.0
                ));
            }
            if !a.complete {
                clauses.push(format!(
                    "the attributions are incomplete (they miss the output's change by {:.4} nats)",
                    a.completeness_gap
                ));
            }
        }
        None => clauses.push(format!("a {} model has no gradients to attribute", e.model_kind)),
    }
    if let Some(r) = e.regime_probabilities.iter().max_by(|a, b| a.value.total_cmp(&b.value)) {
        let n = r.name.trim_start_matches("regime_p");
        clauses.push(format!("regime {n} at {:.2}", r.value));
    }
    if let Some(s) = e.specialists.iter().max_by(|a, b| a.gate.total_cmp(&b.gate)) {
        clauses.push(format!(
            "the {} specialist carried {:.2} of the gate and preferred {}",
            s.name.replace('_', " "),
            s.gate,
            s.preferred.as_str()
        ));
    }
    if let Some(last) = e.segments.last() {
        let n = e.segments.len();
        clauses.push(format!(
            "it thought for {n} segment{} (at the last, halting valued {:.2} against {:.2} for going on)",
            if n == 1 { "" } else { "s" },
            last.q_halt,
            last.q_continue
        ));
    }
    format!("{}.", clauses.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str, value: f32) -> Named {
        Named {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn the_paragraph_names_what_pushed_the_decision_and_the_models_parts() {
        let mut by_bar = vec![0.01f32; 27];
        by_bar.extend([0.1, 0.1, 0.1, 0.1, 0.1]);
        let e = Explanation {
            schema: EXPLANATION_SCHEMA,
            model_kind: "moe".into(),
            action: "BUY_LONG".into(),
            quantity: 0.3,
            probabilities: [0.62, 0.1, 0.0, 0.0, 0.28],
            value: 0.125,
            attributions: Some(Attributions {
                method: "integrated_gradients".into(),
                target: "log_prob(BUY_LONG)".into(),
                baseline: "zeros".into(),
                steps: 64,
                output: -0.48,
                baseline_output: -1.6,
                completeness_gap: 0.0001,
                complete: true,
                by_feature: vec![
                    named("momentum_10", 0.21),
                    named("rsi_14", 0.12),
                    named("atr_14", -0.15),
                ],
                by_bar,
                account: vec![named("exposure", 0.01)],
            }),
            regime_probabilities: vec![named("regime_p0", 0.2), named("regime_p2", 0.71)],
            specialists: vec![
                SpecialistView {
                    name: "trend".into(),
                    gate: 0.64,
                    preferred: Action::BuyLong,
                    probability: 0.8,
                },
                SpecialistView {
                    name: "mean_reversion".into(),
                    gate: 0.36,
                    preferred: Action::Hold,
                    probability: 0.5,
                },
            ],
            segments: vec![],
            text: String::new(),
        };
        let text = describe(&e);
        assert_eq!(
            text,
            "Bought 30% of the risk budget (probability 0.62, value estimate 0.125); \
             momentum_10 (+0.210) and rsi_14 (+0.120) pushed toward BUY_LONG, atr_14 (-0.150) pushed against it; \
             the latest 5 of 32 bars carried 65% of the window's attribution; regime 2 at 0.71; \
             the trend specialist carried 0.64 of the gate and preferred BUY_LONG."
        );
        let tree = Explanation {
            model_kind: "gbt".into(),
            action: "HOLD".into(),
            attributions: None,
            regime_probabilities: vec![],
            specialists: vec![],
            segments: vec![SegmentView {
                q_halt: 1.2,
                q_continue: 0.3,
            }],
            ..e
        };
        assert_eq!(
            describe(&tree),
            "Held (probability 0.28, value estimate 0.125); a gbt model has no gradients to attribute; \
             it thought for 1 segment (at the last, halting valued 1.20 against 0.30 for going on)."
        );
    }
}
