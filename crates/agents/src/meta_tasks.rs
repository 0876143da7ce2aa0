//! Task sampling for meta-learning (algorithms.md §3): a task is one
//! (instrument, timeframe) market and a pair of consecutive windows in it,
//! support then query, separated by an embargo so no bar of the query
//! window's features overlaps the support window.
//!
//! - whole instruments are held out for meta-test (never sampled for
//!   meta-training);
//! - markets are drawn with probability ∝ bars^0.5, so long 1-minute series
//!   do not swamp daily ones;
//! - a batch draws distinct markets while it can (diversity), then repeats.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One market available to the sampler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketInfo {
    /// The instrument's name; hold-outs match on it.
    pub instrument: String,
    /// The timeframe's name, e.g. `1d`.
    pub timeframe: String,
    /// Bars usable for tasks (the market's training split).
    pub bars: usize,
}

/// The shape of tasks and batches, and what is held out.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    /// Bars in the support window (positive).
    pub support: usize,
    /// Bars in the query window (positive).
    pub query: usize,
    /// Bars skipped between the windows (at least the observation window).
    pub embargo: usize,
    /// Instruments kept for meta-test.
    pub holdout: Vec<String>,
    /// Tasks per meta-training batch (positive).
    pub batch: usize,
    /// Seeds the sampler's draws of markets and windows.
    pub seed: u64,
}

/// A task: a market and its two windows (bar ranges in that market).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Index of the market in [`TaskSampler::markets`].
    pub market: usize,
    /// The support window: `support` bars within the market's `0..bars`
    /// (offsets into its training split).
    pub support: std::ops::Range<usize>,
    /// The query window, starting `embargo` bars after the support ends.
    pub query: std::ops::Range<usize>,
}

/// Draws meta-training batches and meta-test tasks, reproducibly from
/// [`TaskConfig::seed`].
#[derive(Debug)]
pub struct TaskSampler {
    markets: Vec<MarketInfo>,
    train: Vec<usize>,
    test: Vec<usize>,
    weights: Vec<f64>,
    cfg: TaskConfig,
    rng: ChaCha8Rng,
}

impl TaskSampler {
    /// Splits markets into meta-train and meta-test by instrument; refuses
    /// settings that leave either side empty or windows that do not fit.
    pub fn new(markets: Vec<MarketInfo>, cfg: TaskConfig) -> Result<TaskSampler, String> {
        if cfg.support == 0 || cfg.query == 0 || cfg.batch == 0 {
            return Err("support, query and batch must be positive".into());
        }
        let span = cfg.support + cfg.embargo + cfg.query;
        for h in &cfg.holdout {
            if !markets.iter().any(|m| &m.instrument == h) {
                return Err(format!("the held-out instrument `{h}` is not among the markets"));
            }
        }
        let usable = |m: &MarketInfo| m.bars >= span;
        let train: Vec<usize> = (0..markets.len())
            .filter(|&i| !cfg.holdout.contains(&markets[i].instrument) && usable(&markets[i]))
            .collect();
        let test: Vec<usize> = (0..markets.len())
            .filter(|&i| cfg.holdout.contains(&markets[i].instrument) && usable(&markets[i]))
            .collect();
        if train.is_empty() {
            return Err(format!(
                "no market left for meta-training with {span} bars per task (support + embargo + query); hold out fewer instruments or shorten the windows"
            ));
        }
        if test.is_empty() {
            return Err("no held-out market is long enough for a meta-test task; hold out another instrument".into());
        }
        let weights = train.iter().map(|&i| (markets[i].bars as f64).sqrt()).collect();
        Ok(TaskSampler {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            markets,
            train,
            test,
            weights,
            cfg,
        })
    }

    /// Every market given to [`TaskSampler::new`], in order; tasks index
    /// into it.
    pub fn markets(&self) -> &[MarketInfo] {
        &self.markets
    }

    /// Indices of the markets tasks are sampled from: not held out and
    /// long enough for one task.
    pub fn meta_train_markets(&self) -> &[usize] {
        &self.train
    }

    /// Indices of the held-out markets long enough for one task.
    pub fn meta_test_markets(&self) -> &[usize] {
        &self.test
    }

    fn windows(&mut self, market: usize) -> Task {
        let c = &self.cfg;
        let span = c.support + c.embargo + c.query;
        let start = self.rng.random_range(0..=self.markets[market].bars - span);
        Task {
            market,
            support: start..start + c.support,
            query: start + c.support + c.embargo..start + span,
        }
    }

    /// A meta-training batch: distinct markets drawn ∝ √bars while they
    /// last, each with freshly drawn windows.
    pub fn sample_batch(&mut self) -> Vec<Task> {
        let mut out = Vec::with_capacity(self.cfg.batch);
        let mut available: Vec<usize> = (0..self.train.len()).collect();
        while out.len() < self.cfg.batch {
            if available.is_empty() {
                available = (0..self.train.len()).collect();
            }
            let total: f64 = available.iter().map(|&j| self.weights[j]).sum();
            let mut u = self.rng.random::<f64>() * total;
            let mut pick = available.len() - 1;
            for (pos, &j) in available.iter().enumerate() {
                u -= self.weights[j];
                if u <= 0.0 {
                    pick = pos;
                    break;
                }
            }
            let market = self.train[available.swap_remove(pick)];
            out.push(self.windows(market));
        }
        out
    }

    /// One task from each held-out market (for meta-test).
    pub fn meta_test_tasks(&mut self) -> Vec<Task> {
        let test = self.test.clone();
        test.into_iter().map(|m| self.windows(m)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn markets() -> Vec<MarketInfo> {
        let m = |i: &str, t: &str, bars| MarketInfo {
            instrument: i.into(),
            timeframe: t.into(),
            bars,
        };
        vec![
            m("nvda", "1d", 2800),
            m("orcl", "1d", 3500),
            m("yhoo", "1d", 3200),
            m("es", "5m", 40_000),
            m("es", "1m", 160_000),
            m("tiny", "1d", 50),
        ]
    }

    fn cfg() -> TaskConfig {
        TaskConfig {
            support: 128,
            query: 64,
            embargo: 32,
            holdout: vec!["yhoo".into()],
            batch: 4,
            seed: 9,
        }
    }

    #[test]
    fn held_out_instruments_never_reach_meta_training() {
        let mut s = TaskSampler::new(markets(), cfg()).unwrap();
        assert_eq!(s.meta_test_markets(), &[2]);
        // The 50-bar market cannot hold a 224-bar task.
        assert!(!s.meta_train_markets().contains(&5));
        for _ in 0..200 {
            for t in s.sample_batch() {
                assert_ne!(s.markets()[t.market].instrument, "yhoo");
                assert_eq!(t.support.len(), 128);
                assert_eq!(t.query.len(), 64);
                // Consecutive, embargoed, inside the market.
                assert_eq!(t.query.start, t.support.end + 32);
                assert!(t.query.end <= s.markets()[t.market].bars);
            }
        }
        assert!(s.meta_test_tasks().iter().all(|t| t.market == 2));
    }

    #[test]
    fn batches_are_diverse_and_weighted_by_the_square_root_of_length() {
        let mut s = TaskSampler::new(markets(), cfg()).unwrap();
        let mut firsts = [0usize; 6];
        for _ in 0..4000 {
            let b = s.sample_batch();
            let mut seen: Vec<usize> = b.iter().map(|t| t.market).collect();
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 4, "four distinct markets in a batch of four");
            firsts[b[0].market] += 1;
        }
        // First draws ∝ √bars: 1-minute ES (160k bars) about 7.6x NVDA daily, not 57x.
        let ratio = firsts[4] as f64 / firsts[0] as f64;
        assert!((6.5..8.8).contains(&ratio), "{firsts:?}");
        // Same seed, same tasks.
        let mut a = TaskSampler::new(markets(), cfg()).unwrap();
        let mut b = TaskSampler::new(markets(), cfg()).unwrap();
        assert_eq!(a.sample_batch(), b.sample_batch());
    }

    #[test]
    fn bad_settings_are_named() {
        let mut c = cfg();
        c.holdout = vec!["msft".into()];
        assert!(TaskSampler::new(markets(), c).unwrap_err().contains("msft"));
        let mut c = cfg();
        c.holdout = vec!["nvda".into(), "orcl".into(), "yhoo".into(), "es".into(), "tiny".into()];
        assert!(TaskSampler::new(markets(), c).unwrap_err().contains("meta-training"));
        let mut c = cfg();
        c.holdout = vec!["tiny".into()];
        assert!(TaskSampler::new(markets(), c).unwrap_err().contains("held-out"));
    }
}
