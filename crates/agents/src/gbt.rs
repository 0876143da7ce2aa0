//! The second supervised baseline: gradient-boosted trees on the same
//! inputs and labels as the logistic regression (the last `lags` window
//! rows; the next bar's direction), trading the same way (long above
//! `0.5 + band`, short below `0.5 - band`, flat between).
//!
//! Histogram boosting of the log loss, as LightGBM and scikit-learn's
//! `HistGradientBoostingClassifier` do it: each input is cut into at most
//! `bins` quantile bins on the train split; every round fits a tree of
//! depth `depth` to the loss's gradient and Hessian, splitting where the
//! second-order gain `G_L²/(H_L+λ) + G_R²/(H_R+λ) - G²/(H+λ)` is largest
//! with at least `min_leaf` rows a side, leaves worth `-G/(H+λ)`, shrunk
//! by `learning_rate`. A test checks its accuracy against scikit-learn's on
//! the same data.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tradelab_env::VecEnv;

use crate::agent::{Agent, AgentInput, Decision, LearnStats, MarketKey};
use crate::checkpoint::{read_fitted, write_fitted};
use crate::error::AgentError;
use crate::logistic::target_decision;
use crate::metadata::Provenance;

/// The kind `tradelab train --agent` and metadata.json name.
pub const KIND: &str = crate::kinds::GBT;

/// How the trees grow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// Levels of splits per tree.
    pub depth: usize,
    /// Shrinkage of each tree's leaves.
    pub learning_rate: f64,
    /// Quantile bins per input (at most 255).
    pub bins: usize,
    /// Fewest rows in a leaf.
    pub min_leaf: usize,
    /// L2 penalty on leaf values (λ).
    pub l2: f64,
}

/// Leaf marker in [`Node::feature`].
const LEAF: u32 = u32::MAX;

/// One node of a tree, stored flat.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    /// Input index split on, or [`LEAF`].
    feature: u32,
    /// Rows with the input at or below it go left.
    threshold: f32,
    left: u32,
    right: u32,
    /// A leaf's contribution to the log-odds.
    value: f32,
}

/// A boosted ensemble: the log-odds are `base` plus every tree's leaf.
#[derive(Debug, Clone, PartialEq)]
pub struct Booster {
    base: f32,
    /// Nodes of all trees; tree `k` starts at `starts[k]`.
    nodes: Vec<Node>,
    starts: Vec<u32>,
}

impl Booster {
    /// Trees in the ensemble.
    pub fn trees(&self) -> usize {
        self.starts.len()
    }

    /// The first `n` trees only (boosting's prefix: what it would have
    /// been after `n` rounds).
    pub fn truncated(&self, n: usize) -> Booster {
        let n = n.min(self.trees());
        let end = self.starts.get(n).map_or(self.nodes.len(), |s| *s as usize);
        Booster {
            base: self.base,
            nodes: self.nodes[..end].to_vec(),
            starts: self.starts[..n].to_vec(),
        }
    }

    /// The log-odds of a rise for one row of inputs.
    pub fn log_odds(&self, row: &[f32]) -> f64 {
        let mut z = self.base as f64;
        for (k, &start) in self.starts.iter().enumerate() {
            let end = self.starts.get(k + 1).map_or(self.nodes.len(), |e| *e as usize);
            z += tree_value(&self.nodes[start as usize..end], row);
        }
        z
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Bin edges of one input: up to `bins - 1` distinct quantiles, as f32
/// (the inputs are f32, so a row's bin is decided exactly as at inference).
fn edges(column: &mut [f32], bins: usize) -> Vec<f32> {
    column.sort_by(|a, b| a.total_cmp(b));
    let n = column.len();
    let mut e: Vec<f32> = (1..bins).map(|k| column[(k * n / bins).min(n - 1)]).collect();
    e.dedup();
    // The largest value would send every row left: no split there.
    e.retain(|v| *v < column[n - 1]);
    e
}

/// Fits `rounds` trees to labels `y` (0 or 1) of the rows of `x` (`d` f32
/// inputs each).
pub fn fit(x: &[f32], d: usize, y: &[f64], rounds: usize, g: &Growth) -> Result<Booster, AgentError> {
    let n = y.len();
    if d == 0 || x.len() != n * d || n < 2 * g.min_leaf.max(1) {
        return Err(AgentError::Invalid(format!(
            "gradient boosting: {} values for {n} rows of {d}, and at least {} rows needed",
            x.len(),
            2 * g.min_leaf.max(1)
        )));
    }
    if !(2..=256).contains(&g.bins)
        || g.depth == 0
        || g.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        || g.l2 < 0.0
    {
        return Err(AgentError::Invalid(format!(
            "gradient boosting: unusable growth settings {g:?}"
        )));
    }
    // Bin every input once: bin b holds values in (edge[b-1], edge[b]].
    let mut cuts = Vec::with_capacity(d);
    let mut binned = vec![0u8; n * d];
    for f in 0..d {
        let mut col: Vec<f32> = (0..n).map(|i| x[i * d + f]).collect();
        let e = edges(&mut col, g.bins);
        for i in 0..n {
            binned[i * d + f] = e.partition_point(|edge| *edge < x[i * d + f]) as u8;
        }
        cuts.push(e);
    }
    let mean = y.iter().sum::<f64>() / n as f64;
    let base = (mean.clamp(1e-6, 1.0 - 1e-6) / (1.0 - mean.clamp(1e-6, 1.0 - 1e-6))).ln();
    let mut raw = vec![base; n];
    let (mut grad, mut hess) = (vec![0.0; n], vec![0.0; n]);
    let mut booster = Booster {
        base: base as f32,
        nodes: Vec::new(),
        starts: Vec::new(),
    };
    let mut rows: Vec<u32> = Vec::with_capacity(n);
    for _ in 0..rounds {
        for i in 0..n {
            let p = sigmoid(raw[i]);
            grad[i] = p - y[i];
            hess[i] = (p * (1.0 - p)).max(1e-12);
        }
        rows.clear();
        rows.extend(0..n as u32);
        let start = booster.nodes.len();
        let mut tree = Vec::new();
        grow(&mut tree, &mut rows, &binned, d, &cuts, &grad, &hess, 0, g);
        // Update the scores from the fitted tree.
        for (i, r) in raw.iter_mut().enumerate() {
            *r += tree_value(&tree, &x[i * d..(i + 1) * d]);
        }
        booster.starts.push(start as u32);
        booster.nodes.extend(tree);
    }
    Ok(booster)
}

/// One tree's leaf value for `row` (`tree` holds local child indices).
fn tree_value(tree: &[Node], row: &[f32]) -> f64 {
    let mut k = 0;
    loop {
        let n = tree[k];
        if n.feature == LEAF {
            return n.value as f64;
        }
        k = if row[n.feature as usize] <= n.threshold {
            n.left
        } else {
            n.right
        } as usize;
    }
}

/// Grows the subtree of `rows` at `level` into `tree` (node indices local
/// to the tree); returns its root's index.
#[allow(clippy::too_many_arguments)]
fn grow(
    tree: &mut Vec<Node>,
    rows: &mut [u32],
    binned: &[u8],
    d: usize,
    cuts: &[Vec<f32>],
    grad: &[f64],
    hess: &[f64],
    level: usize,
    g: &Growth,
) -> u32 {
    let (gs, hs) = rows
        .iter()
        .fold((0.0, 0.0), |(a, b), &i| (a + grad[i as usize], b + hess[i as usize]));
    let me = tree.len();
    tree.push(Node {
        feature: LEAF,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: (-gs / (hs + g.l2) * g.learning_rate) as f32,
    });
    if level >= g.depth || rows.len() < 2 * g.min_leaf {
        return me as u32;
    }
    let score = |gg: f64, hh: f64| gg * gg / (hh + g.l2);
    let parent = score(gs, hs);
    let mut best: Option<(f64, usize, usize)> = None; // gain, feature, bin
    let mut hist = vec![(0.0f64, 0.0f64, 0usize); 256];
    for f in 0..d {
        let bins = cuts[f].len() + 1;
        if bins < 2 {
            continue;
        }
        hist[..bins].iter_mut().for_each(|h| *h = (0.0, 0.0, 0));
        for &i in rows.iter() {
            let h = &mut hist[binned[i as usize * d + f] as usize];
            h.0 += grad[i as usize];
            h.1 += hess[i as usize];
            h.2 += 1;
        }
        let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0);
        for (b, h) in hist.iter().enumerate().take(bins - 1) {
            gl += h.0;
            hl += h.1;
            nl += h.2;
            let nr = rows.len() - nl;
            if nl < g.min_leaf || nr < g.min_leaf {
                continue;
            }
            let gain = score(gl, hl) + score(gs - gl, hs - hl) - parent;
            if gain > 1e-12 && best.is_none_or(|(bg, _, _)| gain > bg) {
                best = Some((gain, f, b));
            }
        }
    }
    let Some((_, f, b)) = best else {
        return me as u32;
    };
    // Rows in bins 0..=b go left.
    let mut split = 0;
    for k in 0..rows.len() {
        if (binned[rows[k] as usize * d + f] as usize) <= b {
            rows.swap(k, split);
            split += 1;
        }
    }
    let (left_rows, right_rows) = rows.split_at_mut(split);
    let left = grow(tree, left_rows, binned, d, cuts, grad, hess, level + 1, g);
    let right = grow(tree, right_rows, binned, d, cuts, grad, hess, level + 1, g);
    tree[me] = Node {
        feature: f as u32,
        threshold: cuts[f][b],
        left,
        right,
        value: 0.0,
    };
    me as u32
}

/// Share of rows whose direction the booster predicts.
pub fn accuracy(b: &Booster, x: &[f32], d: usize, y: &[f64]) -> f64 {
    let right = y
        .iter()
        .enumerate()
        .filter(|(i, yi)| (b.log_odds(&x[i * d..(i + 1) * d]) > 0.0) == (**yi > 0.5))
        .count();
    right as f64 / y.len().max(1) as f64
}

/// A fitted booster's shape and how it was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbtConfig {
    /// Feature columns per window row.
    pub features: usize,
    /// Window rows used, newest last.
    pub lags: usize,
    /// Half-width of the no-trade band around probability 0.5.
    pub band: f64,
    /// How its trees grew.
    pub growth: Growth,
    /// Trees kept (chosen on validation).
    pub trees: usize,
    /// Directions predicted right on the train split.
    pub train_accuracy: f64,
    /// The same on the validation split (none without one).
    pub validation_accuracy: Option<f64>,
}

/// A fitted booster as an agent that decides target positions.
pub struct GbtAgent {
    /// Its shape and selection.
    pub config: GbtConfig,
    booster: Booster,
    /// What it was trained on.
    pub provenance: Provenance,
}

impl GbtAgent {
    /// The agent of `booster`.
    pub fn new(config: GbtConfig, booster: Booster) -> GbtAgent {
        GbtAgent {
            config,
            booster,
            provenance: Provenance::default(),
        }
    }

    /// The probability that the next bar closes higher, given the window.
    pub fn probability_up(&self, window: &[f32]) -> Result<f64, AgentError> {
        let d = self.config.features * self.config.lags;
        if window.len() < d {
            return Err(AgentError::Mismatch(format!(
                "a window of {} values; the model reads its last {d}",
                window.len()
            )));
        }
        Ok(sigmoid(self.booster.log_odds(&window[window.len() - d..])))
    }
}

impl Agent for GbtAgent {
    fn kind(&self) -> &'static str {
        KIND
    }

    /// Deterministic: the same decision greedy or sampled.
    fn select_action(&mut self, input: &AgentInput<'_>, _greedy: bool) -> Result<Decision, AgentError> {
        Ok(target_decision(
            self.probability_up(input.window)?,
            self.config.band,
            input.mask,
        ))
    }

    fn seed_sampling(&mut self, _seed: u64) {}

    fn learn(&mut self, _: &mut VecEnv, _: &[MarketKey]) -> Result<LearnStats, AgentError> {
        Err(AgentError::Invalid(
            "boosted trees are fitted on the train split (tradelab train --agent gbt), not by RL updates".into(),
        ))
    }

    fn save(&self, dir: &Path) -> Result<(), AgentError> {
        let b = &self.booster;
        let col = |f: fn(&Node) -> f32| b.nodes.iter().map(f).collect::<Vec<f32>>();
        // Indices as f32 are exact below 2^24 nodes.
        write_fitted(
            dir,
            KIND,
            "histogram boosting",
            &[
                (
                    "gbt.feature",
                    col(|n| if n.feature == LEAF { -1.0 } else { n.feature as f32 }),
                ),
                ("gbt.threshold", col(|n| n.threshold)),
                ("gbt.left", col(|n| n.left as f32)),
                ("gbt.right", col(|n| n.right as f32)),
                ("gbt.value", col(|n| n.value)),
                ("gbt.starts", b.starts.iter().map(|s| *s as f32).collect()),
                ("gbt.base", vec![b.base]),
            ],
            &self.config,
            &self.provenance,
        )
    }

    fn load(dir: &Path) -> Result<Self, AgentError> {
        let names = [
            "gbt.feature",
            "gbt.threshold",
            "gbt.left",
            "gbt.right",
            "gbt.value",
            "gbt.starts",
            "gbt.base",
        ];
        let (meta, v) = read_fitted::<GbtConfig>(dir, KIND, "boosted trees", &names)?;
        let [feature, threshold, left, right, value, starts, base] = <[Vec<f32>; 7]>::try_from(v)
            .map_err(|_| AgentError::Invalid("read_fitted returns one vector per name".into()))?;
        let path = dir.join(crate::checkpoint::WEIGHTS_FILE);
        let n = feature.len();
        let damaged = |what: &str| AgentError::checkpoint(&path, format!("is damaged: {what}"));
        let inputs = meta
            .config
            .features
            .checked_mul(meta.config.lags)
            .filter(|_| meta.config.lags <= crate::checkpoint::MAX_WINDOW)
            .ok_or_else(|| damaged("metadata.json describes an impossible number of inputs"))?;
        if [threshold.len(), left.len(), right.len(), value.len()]
            .iter()
            .any(|l| *l != n)
            || base.len() != 1
        {
            return Err(damaged("its node arrays differ in length"));
        }
        let starts: Vec<u32> = starts.iter().map(|s| *s as u32).collect();
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let node = Node {
                feature: if feature[i] < 0.0 { LEAF } else { feature[i] as u32 },
                threshold: threshold[i],
                left: left[i] as u32,
                right: right[i] as u32,
                value: value[i],
            };
            if node.feature != LEAF && node.feature as usize >= inputs {
                return Err(damaged("a split reads an input the model does not have"));
            }
            nodes.push(node);
        }
        // Every child must lie inside its own tree, after its parent (no cycles).
        for (k, &s) in starts.iter().enumerate() {
            let end = starts.get(k + 1).map_or(n, |e| *e as usize);
            if s as usize >= end || end > n {
                return Err(damaged("its trees' offsets are out of order"));
            }
            for (local, node) in nodes[s as usize..end].iter().enumerate() {
                if node.feature != LEAF
                    && [node.left, node.right]
                        .iter()
                        .any(|c| *c as usize <= local || s as usize + *c as usize >= end)
                {
                    return Err(damaged("a child outside its tree"));
                }
            }
        }
        Ok(GbtAgent {
            config: meta.config,
            booster: Booster {
                base: base[0],
                nodes,
                starts,
            },
            provenance: meta.provenance,
        })
    }

    fn provenance(&self) -> &Provenance {
        &self.provenance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn growth() -> Growth {
        Growth {
            depth: 2,
            learning_rate: 0.3,
            bins: 16,
            min_leaf: 5,
            l2: 1.0,
        }
    }

    /// Rows of 2 inputs; the label is an interaction no line can draw.
    fn xor(n: usize) -> (Vec<f32>, Vec<f64>) {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        let mut s = 7u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        };
        for _ in 0..n {
            let (a, b) = (next(), next());
            x.extend([a, b]);
            y.push(f64::from(a * b > 0.0));
        }
        (x, y)
    }

    #[test]
    fn boosting_learns_an_interaction_and_more_rounds_fit_better() {
        let (x, y) = xor(600);
        let b = fit(&x, 2, &y, 30, &growth()).unwrap();
        assert_eq!(b.trees(), 30);
        let full = accuracy(&b, &x, 2, &y);
        assert!(full > 0.9, "{full}");
        let few = accuracy(&b.truncated(1), &x, 2, &y);
        assert!(few < full, "{few} vs {full}");
        assert_eq!(b.truncated(100), b);
        assert!(fit(&x, 2, &y[..3], 5, &growth()).is_err());
    }

    #[test]
    fn a_saved_booster_decides_as_before_and_damage_is_named() {
        let (x, y) = xor(400);
        let booster = fit(&x, 2, &y, 10, &growth()).unwrap();
        let config = GbtConfig {
            features: 2,
            lags: 1,
            band: 0.05,
            growth: growth(),
            trees: 10,
            train_accuracy: accuracy(&booster, &x, 2, &y),
            validation_accuracy: None,
        };
        let agent = GbtAgent::new(config, booster);
        let dir = tempfile::tempdir().unwrap();
        agent.save(dir.path()).unwrap();
        let loaded = GbtAgent::load(dir.path()).unwrap();
        for i in 0..50 {
            let w = &x[2 * i..2 * i + 2];
            assert_eq!(loaded.probability_up(w).unwrap(), agent.probability_up(w).unwrap());
        }
        assert_eq!(loaded.config.trees, 10);
        // A checkpoint whose files do not match their checksums is refused.
        let weights = dir.path().join(crate::checkpoint::WEIGHTS_FILE);
        let mut bytes = std::fs::read(&weights).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&weights, bytes).unwrap();
        assert!(GbtAgent::load(dir.path()).is_err());
    }
}
