//! The `hierarchical_reasoning_model` section: the HRM agent's sizes,
//! reasoning depth, halting and learning rates (algorithms.md 1 and 2).

use serde::{Deserialize, Serialize};

use tradelab_core::settings::Validator;
use tradelab_core::{Error, Result};

/// `hierarchical_reasoning_model:`: the HRM agent's model and learning
/// rates (rollout shape, discount, clipping and budget come from `ppo:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HrmSettings {
    /// Width of every token's state.
    pub d_model: usize,
    /// Attention heads; divide d_model into heads of even width.
    pub heads: usize,
    /// Blocks in the slow (H) module.
    pub h_layers: usize,
    /// Blocks in the fast (L) module.
    pub l_layers: usize,
    /// N: high-level cycles per segment.
    pub h_cycles: usize,
    /// T: low-level steps per high-level cycle.
    pub l_cycles: usize,
    /// M_max: segments at most per decision.
    pub max_segments: usize,
    /// M_min when it is not drawn at random.
    pub min_segments: usize,
    /// Probability of drawing M_min from U{2..M_max} during training.
    pub epsilon: f64,
    /// Adaptive halting by the Q-head; off runs max_segments every time.
    pub act: bool,
    /// Embedding width of the instrument id in the context token.
    pub instrument_embedding: usize,
    /// Embedding width of the timeframe id in the context token.
    pub timeframe_embedding: usize,
    /// Adam's step size for PPO fine-tuning.
    pub learning_rate: f64,
    /// Decoupled weight decay (keeps weights bounded, as HRM relies on).
    pub weight_decay: f64,
    /// Weight of the Q-halting loss in each segment's loss.
    pub halt_loss_coef: f64,
    /// Subtracted from the continue target per segment (ties go to halting).
    pub continue_margin: f64,
    /// Agreement on an entry also needs expected quantities this close.
    pub quantity_tolerance: f64,
    /// Supervised epochs on hindsight-optimal labels before PPO (0: none).
    pub pretrain_epochs: usize,
    /// Step size of that supervised pretraining.
    pub pretrain_learning_rate: f64,
    /// Precision of `model.safetensors` (training always runs in f32).
    pub weights_dtype: WeightsDtype,
}

/// How a checkpoint stores the model's weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsDtype {
    /// 32-bit floats, as trained.
    F32,
    /// bfloat16: half the size; the f32 master weights go with the
    /// optimiser state so training still resumes exactly.
    Bf16,
}

/// Named size presets, as `--set` overrides: `small` (the CPU default) and
/// `paper` (the 27M-parameter size of Wang et al.: d 512, 8 heads, 4 + 4
/// layers, weights saved in bf16 as the paper trains them).
pub fn hrm_preset(name: &str) -> Result<&'static [&'static str]> {
    match name {
        "small" => Ok(&[
            "hierarchical_reasoning_model.d_model=64",
            "hierarchical_reasoning_model.heads=4",
            "hierarchical_reasoning_model.h_layers=1",
            "hierarchical_reasoning_model.l_layers=1",
            "hierarchical_reasoning_model.weights_dtype=f32",
        ]),
        "paper" => Ok(&[
            "hierarchical_reasoning_model.d_model=512",
            "hierarchical_reasoning_model.heads=8",
            "hierarchical_reasoning_model.h_layers=4",
            "hierarchical_reasoning_model.l_layers=4",
            "hierarchical_reasoning_model.weights_dtype=bf16",
        ]),
        other => Err(Error::SettingsInvalid {
            key: "--preset".into(),
            value: other.into(),
            problem: "is not a known HRM preset".into(),
            allowed: "small (CPU default) or paper (27M parameters)".into(),
        }),
    }
}

impl Default for HrmSettings {
    /// The compiled-in `config/settings.yaml`'s section.
    fn default() -> Self {
        tradelab_core::settings::default_section("hierarchical_reasoning_model")
    }
}

impl HrmSettings {
    /// Range checks that types alone cannot express.
    pub fn validate(&self, v: &mut Validator) {
        let k = |name: &str| format!("hierarchical_reasoning_model.{name}");
        for (name, value, hi) in [
            ("d_model", self.d_model, 8192),
            ("heads", self.heads, 128),
            ("h_layers", self.h_layers, 64),
            ("l_layers", self.l_layers, 64),
            ("h_cycles", self.h_cycles, 256),
            ("l_cycles", self.l_cycles, 256),
            ("max_segments", self.max_segments, 64),
            ("min_segments", self.min_segments, 64),
            ("instrument_embedding", self.instrument_embedding, 4096),
            ("timeframe_embedding", self.timeframe_embedding, 4096),
        ] {
            v.int_range(&k(name), value, 1, hi);
        }
        v.check(
            self.heads > 0 && self.d_model.is_multiple_of(self.heads) && (self.d_model / self.heads).is_multiple_of(2),
            &k("heads"),
            self.heads,
            "must divide d_model into heads of even width (rotary positions rotate pairs)",
            "a divisor of d_model leaving an even quotient, e.g. 4 for d_model 64",
        );
        v.check(
            self.min_segments <= self.max_segments,
            &k("min_segments"),
            self.min_segments,
            "is above max_segments",
            "an integer in [1, max_segments]",
        );
        v.check(
            self.epsilon == 0.0 || self.max_segments >= 2,
            &k("epsilon"),
            self.epsilon,
            "draws M_min from U{2..max_segments}, which is empty when max_segments is 1",
            "0 when max_segments is 1",
        );
        v.range(&k("epsilon"), self.epsilon, 0.0, 1.0);
        for (name, value) in [
            ("learning_rate", self.learning_rate),
            ("pretrain_learning_rate", self.pretrain_learning_rate),
        ] {
            v.check(
                value.is_finite() && value > 0.0 && value <= 1.0,
                &k(name),
                value,
                "is out of range",
                "a number in (0, 1], like 0.0003",
            );
        }
        v.range(&k("weight_decay"), self.weight_decay, 0.0, 10.0);
        v.range(&k("halt_loss_coef"), self.halt_loss_coef, 0.0, 100.0);
        v.range(&k("continue_margin"), self.continue_margin, 0.0, 1.0);
        v.range(&k("quantity_tolerance"), self.quantity_tolerance, 0.0, 1.0);
        v.int_range(&k("pretrain_epochs"), self.pretrain_epochs, 0, 10_000);
    }

    /// Parameters in the reasoning blocks: `4 d^2 + 3 d w` per block, `w`
    /// the SwiGLU width (algorithms.md 1.6).
    pub fn block_parameters(&self) -> usize {
        let d = self.d_model;
        let multiple = if d >= 256 { 256 } else { 16 };
        let w = (8 * d).div_ceil(3).div_ceil(multiple) * multiple;
        (self.h_layers + self.l_layers) * (4 * d * d + 3 * d * w)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use tradelab_core::settings::{layered, Validator};

    use super::HrmSettings;

    /// The section as the whole file's layers give it.
    #[derive(Deserialize)]
    struct Only {
        hierarchical_reasoning_model: HrmSettings,
    }

    fn load(overrides: &[String]) -> tradelab_core::Result<HrmSettings> {
        let only: Only = layered(None, overrides)?;
        let mut v = Validator::default();
        only.hierarchical_reasoning_model.validate(&mut v);
        v.finish()?;
        Ok(only.hierarchical_reasoning_model)
    }

    fn refused(overrides: &[&str]) -> String {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        load(&o).expect_err("should be refused").to_string()
    }

    #[test]
    fn incompatible_combinations_are_refused_with_the_key() {
        let e = refused(&["hierarchical_reasoning_model.heads=3"]);
        assert!(
            e.contains("hierarchical_reasoning_model.heads") && e.contains("d_model"),
            "{e}"
        );
        let e = refused(&["hierarchical_reasoning_model.heads=64"]);
        assert!(e.contains("even width"), "{e}");
        let e = refused(&[
            "hierarchical_reasoning_model.min_segments=5",
            "hierarchical_reasoning_model.max_segments=4",
        ]);
        assert!(e.contains("min_segments") && e.contains("above max_segments"), "{e}");
        let e = refused(&[
            "hierarchical_reasoning_model.max_segments=1",
            "hierarchical_reasoning_model.min_segments=1",
            "hierarchical_reasoning_model.epsilon=0.1",
        ]);
        assert!(e.contains("epsilon"), "{e}");
        let e = refused(&["hierarchical_reasoning_model.h_cycles=0"]);
        assert!(e.contains("h_cycles"), "{e}");
    }

    #[test]
    fn presets_give_the_cpu_default_and_the_papers_27m_blocks() {
        let small = load(&[]).unwrap();
        let via_preset: Vec<String> = super::hrm_preset("small")
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(load(&via_preset).unwrap(), small);
        let paper: Vec<String> = super::hrm_preset("paper")
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        let paper = load(&paper).unwrap();
        assert_eq!(paper.block_parameters(), 27_262_976);
        assert!(super::hrm_preset("huge").is_err());
    }
}
