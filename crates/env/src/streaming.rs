//! The observation built bar by bar as bars arrive (a live feed, or a
//! replay): the feature engine streamed one bar at a time, the same
//! scale-free transform and the same z-scoring as [`MarketData`], in a ring
//! of the last `window` rows. Fed the same bars from the same start, its
//! window equals [`MarketData::window`] bit for bit (a test checks every
//! bar); nothing is allocated per bar.
//!
//! [`MarketData`]: crate::MarketData
//! [`MarketData::window`]: crate::MarketData::window

use tradelab_core::Bar;
use tradelab_data::settings::FeatureSettings;
use tradelab_data::FeatureEngine;

use crate::market_data::{z_score, Transform};

/// One instrument's observation window, kept up to date bar by bar.
#[derive(Debug, Clone)]
pub struct StreamingWindow {
    engine: FeatureEngine,
    transforms: Vec<Transform>,
    mean: Vec<f64>,
    std: Vec<f64>,
    window: usize,
    /// The engine's output for the latest bar, and for the one before.
    raw: Vec<f64>,
    previous: Vec<f64>,
    /// `window` rows of z-scored values, row `bars % window` next.
    ring: Vec<f32>,
    /// The window in time order, assembled on demand.
    out: Vec<f32>,
    bars: usize,
}

impl StreamingWindow {
    /// A window of `window` rows of the features `names` (which must be
    /// what `settings` computes: regime columns cannot be streamed) with the
    /// training statistics `mean` and `std`.
    pub fn new(
        settings: &FeatureSettings,
        names: &[String],
        mean: &[f64],
        std: &[f64],
        window: usize,
    ) -> Result<Self, String> {
        let engine = FeatureEngine::new(settings);
        if engine.names() != names {
            return Err(format!(
                "the model observes {names:?} but its feature settings give {:?}; a model with regime features cannot decide on a stream of bars yet",
                engine.names()
            ));
        }
        if mean.len() != names.len() || std.len() != names.len() || window == 0 {
            return Err("the model's normalisation statistics do not match its features; retrain it".into());
        }
        let nf = names.len();
        Ok(StreamingWindow {
            transforms: names.iter().map(|n| Transform::of(n)).collect(),
            engine,
            mean: mean.to_vec(),
            std: std.to_vec(),
            window,
            raw: vec![f64::NAN; nf],
            previous: vec![f64::NAN; nf],
            ring: vec![0.0; window * nf],
            out: vec![0.0; window * nf],
            bars: 0,
        })
    }

    /// Bars pushed so far.
    pub fn bars(&self) -> usize {
        self.bars
    }

    /// The next bar.
    pub fn push(&mut self, bar: &Bar) {
        std::mem::swap(&mut self.raw, &mut self.previous);
        self.engine.update(bar, &mut self.raw);
        let nf = self.raw.len();
        let row = (self.bars % self.window) * nf;
        for j in 0..nf {
            let x = self.transforms[j].apply(self.raw[j], self.previous[j], bar.close);
            self.ring[row + j] = z_score(x, self.mean[j], self.std[j]);
        }
        self.bars += 1;
    }

    /// The last `window` rows, oldest first (row-major, `window x
    /// features`); `None` before `window` bars have arrived.
    pub fn window(&mut self) -> Option<&[f32]> {
        if self.bars < self.window {
            return None;
        }
        let nf = self.raw.len();
        // The oldest row sits where the next one will be written.
        let split = (self.bars % self.window) * nf;
        let tail = self.ring.len() - split;
        self.out[..tail].copy_from_slice(&self.ring[split..]);
        self.out[tail..].copy_from_slice(&self.ring[..split]);
        Some(&self.out)
    }
}
