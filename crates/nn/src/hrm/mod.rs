//! The Hierarchical Reasoning Model (Wang et al. 2025) as an actor-critic
//! for trading (algorithms.md sections 1 and 2).
//!
//! ```text
//! x~ = [ctx ; W_bar window]                       [B, 1 + W, d]
//!      ctx = W_ctx [inst_emb(i) (64) ; tf_emb(k) (32) ; account] + b
//! one segment, i = 1 .. N*T (carry (z_H, z_L) in, detached carry out):
//!      z_L = f_L(z_L, z_H + x~)                    every step
//!      z_H = f_H(z_H, z_L)                         when i is a multiple of T
//! heads read z_H[:, 0] (the context token):
//!      policy logits (5), Beta quantity (2), value (1), Q-halt (halt, continue)
//! ```
//!
//! **One-step gradient.** Every step but the final L step and the final H
//! step runs detached, so backpropagation passes through one step of each
//! module whatever N x T is, and memory stays flat as N x T grows
//! (algorithms.md 1.3). [`Gradient::Full`] keeps the whole chain, for the
//! test that tells the two apart.
//!
//! The initial states are fixed buffers (truncated normal, std 1), not
//! learned; states restart from them at every bar. Embedding rows start at
//! zero, as HRM's puzzle embeddings do, so a market added later starts from
//! the same neutral context the others started from.

pub mod block;
pub mod infer;

use candle_core::{DType, Device, Result, Tensor};

use crate::params::Params;
use crate::transformer::Linear;
use block::{Dense, ReasoningModule, Rotary};

/// Sizes of an HRM network.
#[derive(Debug, Clone, PartialEq)]
pub struct HrmNetConfig {
    /// Features per bar of the window.
    pub features: usize,
    /// Bars per window W; the states have `1 + W` tokens.
    pub window: usize,
    /// Width of the account-state vector fed into the context token.
    pub account: usize,
    /// Width d of every token and state.
    pub d_model: usize,
    /// Attention heads per block; must divide `d_model` into heads of even
    /// width (rotary positions rotate pairs).
    pub heads: usize,
    /// Blocks in the high-level module.
    pub h_layers: usize,
    /// Blocks in the low-level module.
    pub l_layers: usize,
    /// N: high-level cycles per segment.
    pub h_cycles: usize,
    /// T: low-level steps per cycle.
    pub l_cycles: usize,
    /// Rows of the instrument embedding: instrument ids run below this
    /// (at least one row is made).
    pub instruments: usize,
    /// Rows of the timeframe embedding: timeframe ids run below this (at
    /// least one row is made).
    pub timeframes: usize,
    /// Width of the instrument embedding.
    pub instrument_embedding: usize,
    /// Width of the timeframe embedding.
    pub timeframe_embedding: usize,
}

/// How far gradients reach back inside a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gradient {
    /// Only the final L step and final H step (the HRM approximation).
    OneStep,
    /// Through all N x T steps (backpropagation through time), for tests.
    Full,
}

/// The recurrent state carried between segments, `[B, 1 + W, d]` each.
#[derive(Clone)]
pub struct Carry {
    /// The high-level module's state.
    pub z_h: Tensor,
    /// The low-level module's state.
    pub z_l: Tensor,
}

/// One segment's head outputs for a batch.
pub struct SegmentOutput {
    /// `[B, 5]`, before masking.
    pub logits: Tensor,
    /// `[B]` each: raw Beta concentrations (see `heads::Beta::from_raw`).
    pub raw_alpha: Tensor,
    /// `[B]`: the raw second concentration, as `raw_alpha`.
    pub raw_beta: Tensor,
    /// `[B]`: the critic's estimate of the state's value.
    pub value: Tensor,
    /// `[B]` each: Q-halting logits.
    pub q_halt: Tensor,
    /// `[B]`: the Q-value of continuing for another segment, as `q_halt`.
    pub q_continue: Tensor,
}

/// The HRM actor-critic of the module docs: input embedding, the H and L
/// reasoning modules, fixed initial states and the heads.
pub struct HrmNet {
    cfg: HrmNetConfig,
    bar_projection: Dense,
    context: Linear,
    instrument_embedding: Tensor,
    timeframe_embedding: Tensor,
    h_module: ReasoningModule,
    l_module: ReasoningModule,
    rotary: Rotary,
    z_h_init: Tensor,
    z_l_init: Tensor,
    policy: Linear,
    quantity: Linear,
    value: Linear,
    q_head: Linear,
}

/// Name of the high-level initial state in a checkpoint's tensors.
pub const Z_H_INIT: &str = "buffer.z_h_init";
/// Name of the low-level initial state in a checkpoint's tensors.
pub const Z_L_INIT: &str = "buffer.z_l_init";

impl HrmNet {
    /// Creates the parameters in `p` and draws the initial states from its
    /// generator. Fails unless `heads` splits `d_model` into heads of even
    /// width and there is at least one cycle, bar and feature.
    pub fn new(p: &mut Params, cfg: HrmNetConfig) -> Result<Self> {
        let d = cfg.d_model;
        if cfg.heads == 0 || !d.is_multiple_of(cfg.heads) || !(d / cfg.heads).is_multiple_of(2) {
            candle_core::bail!("d_model {d} must split into {} heads of even width", cfg.heads);
        }
        if cfg.h_cycles == 0 || cfg.l_cycles == 0 || cfg.window == 0 || cfg.features == 0 {
            candle_core::bail!("HRM needs at least one cycle, one bar and one feature: {cfg:?}");
        }
        let device = p.device().clone();
        let context_in = cfg.instrument_embedding + cfg.timeframe_embedding + cfg.account;
        let z_h_init = Tensor::from_vec(p.truncated_values(d, 1.0), d, &device)?;
        let z_l_init = Tensor::from_vec(p.truncated_values(d, 1.0), d, &device)?;
        Ok(HrmNet {
            bar_projection: Dense::new(p, "input.bars", cfg.features, d)?,
            context: Linear::new(p, "input.context", context_in, d, 1.0)?,
            instrument_embedding: p.constant(
                "embedding.instrument",
                &[cfg.instruments.max(1), cfg.instrument_embedding],
                0.0,
            )?,
            timeframe_embedding: p.constant(
                "embedding.timeframe",
                &[cfg.timeframes.max(1), cfg.timeframe_embedding],
                0.0,
            )?,
            h_module: ReasoningModule::new(p, "h", d, cfg.heads, cfg.h_layers)?,
            l_module: ReasoningModule::new(p, "l", d, cfg.heads, cfg.l_layers)?,
            rotary: Rotary::new(cfg.window + 1, d / cfg.heads, &device)?,
            z_h_init,
            z_l_init,
            policy: Linear::new(p, "head.policy", d, 5, 0.01)?,
            quantity: Linear::new(p, "head.quantity", d, 2, 0.01)?,
            value: Linear::new(p, "head.value", d, 1, 1.0)?,
            q_head: Linear::constant(p, "head.q_halt", d, 2, 0.0, -5.0)?,
            cfg,
        })
    }

    /// The sizes the network was built with.
    pub fn config(&self) -> &HrmNetConfig {
        &self.cfg
    }

    /// The fixed initial states, for a checkpoint.
    pub fn buffers(&self) -> [(&'static str, &Tensor); 2] {
        [(Z_H_INIT, &self.z_h_init), (Z_L_INIT, &self.z_l_init)]
    }

    /// Restores the fixed initial states from a checkpoint.
    pub fn set_buffers(&mut self, z_h: Tensor, z_l: Tensor) -> Result<()> {
        let d = self.cfg.d_model;
        if z_h.dims() != [d] || z_l.dims() != [d] {
            candle_core::bail!(
                "initial states of shape {:?}/{:?}, the model needs [{d}]",
                z_h.dims(),
                z_l.dims()
            );
        }
        self.z_h_init = z_h;
        self.z_l_init = z_l;
        Ok(())
    }

    /// The input embedding `x~: [B, 1 + W, d]` from `window: [B, W, F]`,
    /// `account: [B, A]` and `[B]` u32 instrument and timeframe ids.
    pub fn embed(&self, window: &Tensor, account: &Tensor, instrument: &Tensor, timeframe: &Tensor) -> Result<Tensor> {
        let bars = self.bar_projection.forward(window)?;
        let inst = self.instrument_embedding.index_select(instrument, 0)?;
        let tf = self.timeframe_embedding.index_select(timeframe, 0)?;
        let joined = Tensor::cat(&[&inst, &tf, &account.to_dtype(DType::F32)?], 1)?;
        let ctx = self.context.forward(&joined)?.unsqueeze(1)?;
        Tensor::cat(&[&ctx, &bars], 1)
    }

    /// The fixed starting states for a batch of `b`.
    pub fn initial_carry(&self, b: usize) -> Result<Carry> {
        let shape = (b, self.cfg.window + 1, self.cfg.d_model);
        Ok(Carry {
            z_h: self.z_h_init.broadcast_as(shape)?.contiguous()?,
            z_l: self.z_l_init.broadcast_as(shape)?.contiguous()?,
        })
    }

    /// One segment: N cycles of T low-level steps from `carry`. Returns the
    /// detached carry for the next segment and this segment's outputs.
    pub fn segment(&self, carry: &Carry, x: &Tensor, gradient: Gradient) -> Result<(Carry, SegmentOutput)> {
        match gradient {
            Gradient::OneStep => self.final_step(&self.think_ahead(carry, x)?, x),
            Gradient::Full => {
                let (mut z_h, mut z_l) = (carry.z_h.clone(), carry.z_l.clone());
                for i in 1..=self.steps() {
                    z_l = self.l_module.forward(&z_l, &(&z_h + x)?, &self.rotary)?;
                    if i % self.cfg.l_cycles == 0 {
                        z_h = self.h_module.forward(&z_h, &z_l, &self.rotary)?;
                    }
                }
                let out = self.heads(&z_h)?;
                Ok((
                    Carry {
                        z_h: z_h.detach(),
                        z_l: z_l.detach(),
                    },
                    out,
                ))
            }
        }
    }

    /// `segments` segments from the initial states with the graph kept
    /// whole, through every step and across segments (no detaching): the
    /// function acting computes, differentiable end to end in its input,
    /// for attributions. Training never uses it (its memory grows with
    /// every step).
    pub fn unrolled(&self, x: &Tensor, segments: usize) -> Result<SegmentOutput> {
        let carry = self.initial_carry(x.dim(0)?)?;
        let (mut z_h, mut z_l) = (carry.z_h, carry.z_l);
        for _ in 0..segments.max(1) {
            for i in 1..=self.steps() {
                z_l = self.l_module.forward(&z_l, &(&z_h + x)?, &self.rotary)?;
                if i % self.cfg.l_cycles == 0 {
                    z_h = self.h_module.forward(&z_h, &z_l, &self.rotary)?;
                }
            }
        }
        self.heads(&z_h)
    }

    fn steps(&self) -> usize {
        self.cfg.h_cycles * self.cfg.l_cycles
    }

    /// Steps 1 .. N*T - 1 of a segment, without gradient: the states its
    /// final step starts from. Each state is detached as it is made, so
    /// memory is one step's whatever N x T is.
    pub fn think_ahead(&self, carry: &Carry, x: &Tensor) -> Result<Carry> {
        let (mut z_h, mut z_l) = (carry.z_h.clone(), carry.z_l.clone());
        for i in 1..self.steps() {
            z_l = self.l_module.forward(&z_l, &(&z_h + x)?, &self.rotary)?.detach();
            if i % self.cfg.l_cycles == 0 {
                z_h = self.h_module.forward(&z_h, &z_l, &self.rotary)?.detach();
            }
        }
        Ok(Carry { z_h, z_l })
    }

    /// The final L step and H step of a segment, with gradient, from the
    /// states [`HrmNet::think_ahead`] reached, and the heads. Returns the
    /// detached carry for the next segment and the outputs.
    pub fn final_step(&self, ahead: &Carry, x: &Tensor) -> Result<(Carry, SegmentOutput)> {
        let z_l = self.l_module.forward(&ahead.z_l, &(&ahead.z_h + x)?, &self.rotary)?;
        let z_h = self.h_module.forward(&ahead.z_h, &z_l, &self.rotary)?;
        let out = self.heads(&z_h)?;
        Ok((
            Carry {
                z_h: z_h.detach(),
                z_l: z_l.detach(),
            },
            out,
        ))
    }

    fn heads(&self, z_h: &Tensor) -> Result<SegmentOutput> {
        let b = z_h.dim(0)?;
        let token = z_h.narrow(1, 0, 1)?.squeeze(1)?;
        let q = self.quantity.forward(&token)?;
        let halt = self.q_head.forward(&token)?;
        Ok(SegmentOutput {
            logits: self.policy.forward(&token)?,
            raw_alpha: q.narrow(1, 0, 1)?.reshape(b)?,
            raw_beta: q.narrow(1, 1, 1)?.reshape(b)?,
            value: self.value.forward(&token)?.reshape(b)?,
            q_halt: halt.narrow(1, 0, 1)?.reshape(b)?,
            q_continue: halt.narrow(1, 1, 1)?.reshape(b)?,
        })
    }

    /// The device the network's tensors live on.
    pub fn device(&self) -> &Device {
        self.z_h_init.device()
    }
}

#[cfg(test)]
mod tests;
