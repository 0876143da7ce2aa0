//! Neural building blocks for tradelab's agents, on candle.
//!
//! - [`params`]: a named, sorted parameter store initialised from our own
//!   seeded generator (candle cannot seed its CPU RNG), with orthogonal
//!   initialisation, so the same seed gives the same weights;
//! - [`lstm`]: an LSTM whose input projections for the whole window are one
//!   multiply and whose recurrence is one fused CPU operation with a
//!   hand-written backward pass;
//! - [`transformer`]: a pre-norm Transformer encoder (attention as batched
//!   matrix multiplies) with learned positions;
//! - [`heads`]: the masked 5-way action distribution and the Beta
//!   distribution of the quantity, with log-probabilities and entropies;
//! - [`policy`]: the actor-critic network (encoder, instrument and
//!   timeframe embeddings, action, quantity and value heads);
//! - [`fused_mlp`]: the MLP policy's forward and backward passes written
//!   out on flat buffers (what PPO trains the MLP policy with);
//! - [`hrm`]: the Hierarchical Reasoning Model (two recurrent modules of
//!   post-norm blocks with rotary attention and SwiGLU, one-step gradient)
//!   as an actor-critic with a Q-halting head;
//! - [`simd`]: hot elementwise loops compiled for AVX-512 too, picked at
//!   run time;
//! - [`special`]: log-gamma and digamma from elementwise ops, so the Beta
//!   head's log-probability is differentiable in its parameters.
//!
//! Architecture invariant: only agents and nn depend on the ML framework.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use tradelab_nn::{lstm::Lstm, params::Params};
//!
//! let mut p = Params::new(7, Device::Cpu);
//! let lstm = Lstm::new(&mut p, "enc", 4, 8).unwrap();
//! let x = Tensor::zeros((2, 5, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
//! let (out, h) = lstm.forward(&x).unwrap();
//! assert_eq!(out.dims(), &[2, 5, 8]);
//! assert_eq!(h.dims(), &[2, 8]);
//! ```

#![warn(missing_docs)]

pub mod fused_mlp;
pub mod heads;
pub mod hrm;
mod kernels;
pub mod lstm;
mod lstm_recurrence;
pub mod moe;
pub mod params;
pub mod policy;
pub mod simd;
pub mod special;
pub mod transformer;

pub use candle_core::{Device, Result, Tensor};

/// Fixes the process's compute thread count: sets `RAYON_NUM_THREADS` to
/// candle's own count when it is unset. Without it candle recounts the
/// physical cores (reading `/proc/cpuinfo`) on every matrix multiply, which
/// dominated a single decision of the recurrent and attention policies
/// (BENCHMARKS.md). Call it first in `main`, before any other thread exists
/// (the environment is shared by all threads).
pub fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", kernels::threads().to_string());
    }
}
