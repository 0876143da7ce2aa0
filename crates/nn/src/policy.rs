//! The actor-critic network shared by the PPO agents: an encoder over the
//! observation window (LSTM or Transformer), instrument and timeframe
//! embeddings so one model serves several markets, and three heads.
//!
//! ```text
//! e   = encoder(window)[last step]                     [B, H]
//!       (LSTM, Transformer, or for an MLP tanh(W flatten(window) + b))
//! z   = tanh(W [e, account, inst_emb(i), tf_emb(k)] + b)   (64-d and 32-d embeddings)
//! logits = W_pi z  (5 actions, masked later)      gain 0.01
//! (ra, rb) = W_q z (Beta(1 + softplus ra, 1 + softplus rb) quantity)  gain 0.01
//! value  = W_v z                                   gain 1
//! ```

use candle_core::{DType, Result, Tensor};

use crate::kernels;
use crate::lstm::Lstm;
use crate::params::Params;
use crate::transformer::{Encoder, Linear};

/// Width of the instrument embedding.
pub const INSTRUMENT_EMBEDDING: usize = 64;
/// Width of the timeframe embedding.
pub const TIMEFRAME_EMBEDDING: usize = 32;

/// Which encoder reads the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// An [`Lstm`]; its last hidden state encodes the window.
    Lstm,
    /// A Transformer [`Encoder`]; its last position encodes the window.
    Transformer,
    /// A dense layer over the flattened window: the size of
    /// Stable-Baselines3's `MlpPolicy`, for throughput comparisons.
    Mlp,
}

impl EncoderKind {
    /// The lower-case name settings and checkpoints use (`lstm`,
    /// `transformer`, `mlp`).
    pub fn name(self) -> &'static str {
        match self {
            EncoderKind::Lstm => "lstm",
            EncoderKind::Transformer => "transformer",
            EncoderKind::Mlp => "mlp",
        }
    }

    /// The kind [`EncoderKind::name`] gives `name`; `None` for any other.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "lstm" => Some(EncoderKind::Lstm),
            "transformer" => Some(EncoderKind::Transformer),
            "mlp" => Some(EncoderKind::Mlp),
            _ => None,
        }
    }
}

/// Sizes of a policy network.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyConfig {
    /// Which encoder reads the window.
    pub encoder: EncoderKind,
    /// Features per time step of the window.
    pub features: usize,
    /// Time steps per window (the Transformer's positions and the MLP's
    /// input are sized for exactly this many).
    pub window: usize,
    /// Width of the account-state vector joined to the encoding.
    pub account: usize,
    /// LSTM hidden size or Transformer width.
    /// Also the MLP encoder's and the trunk's width.
    pub hidden: usize,
    /// Attention heads per Transformer layer (must divide `hidden`); unused
    /// by the other encoders.
    pub heads: usize,
    /// Transformer layers; unused by the other encoders.
    pub layers: usize,
    /// Rows of the instrument embedding: instrument ids run below this
    /// (at least one row is made).
    pub instruments: usize,
    /// Rows of the timeframe embedding: timeframe ids run below this (at
    /// least one row is made).
    pub timeframes: usize,
}

impl PolicyConfig {
    /// A lower bound on the parameters this network holds (its embeddings,
    /// trunk and the encoder's input weights), in checked arithmetic:
    /// `None` when it overflows. A checkpoint whose metadata describes more
    /// than its weights file holds is damaged or forged, and is refused
    /// before anything of that size is allocated.
    pub fn min_parameters(&self) -> Option<usize> {
        let h = self.hidden;
        let encoder = match self.encoder {
            EncoderKind::Mlp => self.window.checked_mul(self.features)?.checked_mul(h)?,
            // Input and recurrent weights of four gates.
            EncoderKind::Lstm => self.features.checked_add(h)?.checked_mul(h)?.checked_mul(4)?,
            // At least one h x h projection per layer.
            EncoderKind::Transformer => h.checked_mul(h)?.checked_mul(self.layers)?,
        };
        let embeddings = self
            .instruments
            .max(1)
            .checked_mul(INSTRUMENT_EMBEDDING)?
            .checked_add(self.timeframes.max(1).checked_mul(TIMEFRAME_EMBEDDING)?)?;
        let trunk_in = h
            .checked_add(self.account)?
            .checked_add(INSTRUMENT_EMBEDDING + TIMEFRAME_EMBEDDING)?;
        encoder.checked_add(embeddings)?.checked_add(trunk_in.checked_mul(h)?)
    }
}

enum WindowEncoder {
    Lstm(Lstm),
    Transformer(Encoder),
    Mlp(Linear),
}

/// The network's outputs for a batch.
pub struct PolicyOutput {
    /// `[B, 5]`, before masking.
    pub logits: Tensor,
    /// `[B]` each: raw Beta concentrations (see `heads::Beta::from_raw`).
    pub raw_alpha: Tensor,
    /// `[B]`: the raw second concentration, as `raw_alpha`.
    pub raw_beta: Tensor,
    /// `[B]`: the critic's estimate of the state's value.
    pub value: Tensor,
}

/// The actor-critic network of the module docs, its parameters in a
/// [`Params`] store.
pub struct PolicyNet {
    cfg: PolicyConfig,
    encoder: WindowEncoder,
    instrument_embedding: Tensor,
    timeframe_embedding: Tensor,
    trunk: Linear,
    policy: Linear,
    quantity: Linear,
    value: Linear,
}

impl PolicyNet {
    /// Creates the parameters in `p`: orthogonal layers with the gains in
    /// the module docs, N(0, 1) embeddings, zero biases.
    pub fn new(p: &mut Params, cfg: PolicyConfig) -> Result<Self> {
        let encoder = match cfg.encoder {
            EncoderKind::Lstm => WindowEncoder::Lstm(Lstm::new(p, "encoder.lstm", cfg.features, cfg.hidden)?),
            EncoderKind::Transformer => WindowEncoder::Transformer(Encoder::new(
                p,
                "encoder.transformer",
                cfg.features,
                cfg.window,
                cfg.hidden,
                cfg.heads,
                cfg.layers,
            )?),
            EncoderKind::Mlp => WindowEncoder::Mlp(Linear::new(
                p,
                "encoder.mlp",
                cfg.window * cfg.features,
                cfg.hidden,
                2f64.sqrt(),
            )?),
        };
        let trunk_in = cfg.hidden + cfg.account + INSTRUMENT_EMBEDDING + TIMEFRAME_EMBEDDING;
        Ok(PolicyNet {
            encoder,
            instrument_embedding: p.normal(
                "embedding.instrument",
                &[cfg.instruments.max(1), INSTRUMENT_EMBEDDING],
                1.0,
            )?,
            timeframe_embedding: p.normal(
                "embedding.timeframe",
                &[cfg.timeframes.max(1), TIMEFRAME_EMBEDDING],
                1.0,
            )?,
            trunk: Linear::new(p, "trunk", trunk_in, cfg.hidden, 2f64.sqrt())?,
            policy: Linear::new(p, "head.policy", cfg.hidden, 5, 0.01)?,
            quantity: Linear::new(p, "head.quantity", cfg.hidden, 2, 0.01)?,
            value: Linear::new(p, "head.value", cfg.hidden, 1, 1.0)?,
            cfg,
        })
    }

    /// The sizes the network was built with.
    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    /// `window: [B, W, F]`, `account: [B, A]`, `instrument`, `timeframe`:
    /// `[B]` u32 ids.
    pub fn forward(
        &self,
        window: &Tensor,
        account: &Tensor,
        instrument: &Tensor,
        timeframe: &Tensor,
    ) -> Result<PolicyOutput> {
        let b = window.dim(0)?;
        let encoded = match &self.encoder {
            WindowEncoder::Lstm(l) => l.forward_last(window)?,
            WindowEncoder::Transformer(t) => t.forward_last(window)?,
            WindowEncoder::Mlp(m) => kernels::tanh(&m.forward(&window.flatten_from(1)?)?)?,
        };
        let inst = self.instrument_embedding.index_select(instrument, 0)?;
        let tf = self.timeframe_embedding.index_select(timeframe, 0)?;
        let joined = Tensor::cat(&[&encoded, &account.to_dtype(DType::F32)?, &inst, &tf], 1)?;
        let z = kernels::tanh(&self.trunk.forward(&joined)?)?;
        let q = self.quantity.forward(&z)?;
        Ok(PolicyOutput {
            logits: self.policy.forward(&z)?,
            raw_alpha: q.narrow(1, 0, 1)?.reshape(b)?,
            raw_beta: q.narrow(1, 1, 1)?.reshape(b)?,
            value: self.value.forward(&z)?.reshape(b)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heads::{masked_log_probs, Beta};
    use candle_core::Device;

    fn cfg(encoder: EncoderKind) -> PolicyConfig {
        PolicyConfig {
            encoder,
            features: 5,
            window: 8,
            account: 3,
            hidden: 16,
            heads: 4,
            layers: 1,
            instruments: 3,
            timeframes: 2,
        }
    }

    fn inputs(b: usize) -> (Tensor, Tensor, Tensor, Tensor) {
        let d = Device::Cpu;
        let window = Tensor::randn(0f32, 1.0, (b, 8, 5), &d).unwrap();
        let account = Tensor::zeros((b, 3), DType::F32, &d).unwrap();
        let inst = Tensor::new((0..b as u32).map(|i| i % 3).collect::<Vec<_>>(), &d).unwrap();
        let tf = Tensor::new(vec![0u32; b], &d).unwrap();
        (window, account, inst, tf)
    }

    #[test]
    fn both_encoders_give_every_head_and_gradients_reach_all_parameters() {
        for kind in [EncoderKind::Lstm, EncoderKind::Transformer, EncoderKind::Mlp] {
            let mut p = Params::new(9, Device::Cpu);
            let net = PolicyNet::new(&mut p, cfg(kind)).unwrap();
            let (w, a, i, t) = inputs(4);
            let out = net.forward(&w, &a, &i, &t).unwrap();
            assert_eq!(out.logits.dims(), &[4, 5]);
            assert_eq!(out.value.dims(), &[4]);
            let mask = Tensor::new(&[[1f32, 1.0, 0.0, 0.0, 1.0]; 4], &Device::Cpu).unwrap();
            let lp = masked_log_probs(&out.logits, &mask).unwrap();
            let beta = Beta::from_raw(&out.raw_alpha, &out.raw_beta).unwrap();
            let q = Tensor::new(&[0.3f32, 0.5, 0.7, 0.9], &Device::Cpu).unwrap();
            let loss = ((lp.sum_all().unwrap() + beta.log_prob(&q).unwrap().sum_all().unwrap()).unwrap()
                + out.value.sqr().unwrap().sum_all().unwrap())
            .unwrap();
            let grads = loss.backward().unwrap();
            let missing: Vec<_> = p
                .tensors()
                .into_iter()
                .filter(|(_, t)| grads.get(t).is_none())
                .map(|(n, _)| n)
                .collect();
            assert!(missing.is_empty(), "{kind:?}: no gradient for {missing:?}");
        }
    }

    #[test]
    fn small_head_gains_start_near_uniform_and_instruments_are_told_apart() {
        let mut p = Params::new(2, Device::Cpu);
        let net = PolicyNet::new(&mut p, cfg(EncoderKind::Lstm)).unwrap();
        let (w, a, _, t) = inputs(2);
        // The same window for two different instruments.
        let w = Tensor::cat(&[&w.narrow(0, 0, 1).unwrap(), &w.narrow(0, 0, 1).unwrap()], 0).unwrap();
        let inst = Tensor::new(&[0u32, 1], &Device::Cpu).unwrap();
        let out = net.forward(&w, &a, &inst, &t).unwrap();
        let logits = out.logits.to_vec2::<f32>().unwrap();
        assert!(
            logits.iter().flatten().all(|l| l.abs() < 0.2),
            "near-uniform start: {logits:?}"
        );
        let v = out.value.to_vec1::<f32>().unwrap();
        assert_ne!(v[0], v[1], "the instrument embedding changes the output");
    }

    #[test]
    fn same_seed_same_weights() {
        let mut a = Params::new(5, Device::Cpu);
        PolicyNet::new(&mut a, cfg(EncoderKind::Transformer)).unwrap();
        let mut b = Params::new(5, Device::Cpu);
        PolicyNet::new(&mut b, cfg(EncoderKind::Transformer)).unwrap();
        for ((na, ta), (nb, tb)) in a.tensors().into_iter().zip(b.tensors()) {
            assert_eq!(na, nb);
            assert_eq!(
                ta.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                tb.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            );
        }
    }
}
