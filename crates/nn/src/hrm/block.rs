//! The HRM's building blocks (algorithms.md 1.6): bias-free dense layers
//! with truncated LeCun-normal weights, RMS normalisation without a scale,
//! rotary positions, SwiGLU, and the post-norm block that stacks them.
//!
//! ```text
//! block(h):  h = rms(h + attn(h))        attn: non-causal, rotary positions
//!            h = rms(h + swiglu(h))      swiglu(u) = W_down (silu(W_gate u) * W_up u)
//! module(z, injection) = blocks(z + injection)
//! ```
//!
//! Post-norm with an unscaled RMS norm keeps every state on the unit sphere
//! whatever the number of recurrent steps: this is what lets the modules
//! run N x T times without a target network or exploding states.

use candle_core::{DType, Result, Tensor, D};

use crate::kernels::LinearOp;
use crate::params::Params;

/// RMS-norm epsilon, as in the reference implementation.
pub const RMS_EPS: f64 = 1e-5;

/// `x / sqrt(mean(x^2) + eps)` over the last dimension, with no learned scale.
pub fn rms_norm(x: &Tensor) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    x.broadcast_div(&(ms + RMS_EPS)?.sqrt()?)
}

/// A dense layer `x W^T` without bias.
pub struct Dense {
    pub(crate) weight: Tensor,
    /// A constant zero bias for the fused CPU kernel (not a parameter).
    zero_bias: Tensor,
}

impl Dense {
    /// Truncated LeCun normal: std `1/sqrt(input)`, cut at two deviations.
    pub fn new(p: &mut Params, name: &str, input: usize, output: usize) -> Result<Self> {
        let weight = p.truncated_normal(&format!("{name}.weight"), &[output, input], 1.0 / (input as f64).sqrt())?;
        let zero_bias = Tensor::zeros(output, DType::F32, p.device())?;
        Ok(Dense { weight, zero_bias })
    }

    /// `x: [..., input]` to `[..., output]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let input = *dims
            .last()
            .ok_or_else(|| candle_core::Error::Msg("dense layer of a scalar".into()))?;
        let rows = x.elem_count() / input.max(1);
        let x = x.reshape((rows, input))?;
        let y = if x.device().is_cpu() {
            x.apply_op3(&self.weight, &self.zero_bias, LinearOp)?
        } else {
            x.matmul(&self.weight.t()?)?
        };
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = self.weight.dim(0)?;
        }
        y.reshape(out_dims)
    }
}

/// Rotary position embedding (base 10^4) for a fixed sequence length.
pub struct Rotary {
    /// `[T, d_head]` each, the half-angles repeated for both halves.
    pub(crate) cos: Tensor,
    pub(crate) sin: Tensor,
}

impl Rotary {
    /// The cos and sin tables for `positions` positions and heads
    /// `head_dim` wide (an even width: the halves rotate together).
    pub fn new(positions: usize, head_dim: usize, device: &candle_core::Device) -> Result<Self> {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(positions * head_dim);
        let mut sin = Vec::with_capacity(positions * head_dim);
        for pos in 0..positions {
            // The same angles for both halves (the rotate-half layout).
            for _half in 0..2 {
                for i in 0..half {
                    let freq = 10_000f64.powf(-2.0 * i as f64 / head_dim as f64);
                    let angle = pos as f64 * freq;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        Ok(Rotary {
            cos: Tensor::from_vec(cos, (positions, head_dim), device)?,
            sin: Tensor::from_vec(sin, (positions, head_dim), device)?,
        })
    }

    /// `x: [batch * heads, T, d_head]`: `x cos + rotate_half(x) sin`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(D::Minus1)?;
        let half = d / 2;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        x.broadcast_mul(&self.cos)? + rotated.broadcast_mul(&self.sin)?
    }
}

/// One post-norm block: attention then SwiGLU, each added and normalised.
pub struct Block {
    pub(crate) qkv: Dense,
    pub(crate) out: Dense,
    pub(crate) gate_up: Dense,
    pub(crate) down: Dense,
    heads: usize,
    ff: usize,
}

/// SwiGLU width: `8d/3` rounded up to a multiple of `multiple` (256 in the
/// paper's sizes; smaller models use a smaller multiple so the expansion
/// stays near 8/3 instead of dwarfing d).
pub fn swiglu_width(dim: usize) -> usize {
    let multiple = if dim >= 256 { 256 } else { 16 };
    (8 * dim).div_ceil(3).div_ceil(multiple) * multiple
}

impl Block {
    /// A block of width `dim` with `heads` heads (each of even width, else
    /// an error) and a SwiGLU [`swiglu_width`]`(dim)` wide.
    pub fn new(p: &mut Params, name: &str, dim: usize, heads: usize) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) || !(dim / heads).is_multiple_of(2) {
            candle_core::bail!("model width {dim} must split into {heads} heads of even width");
        }
        let ff = swiglu_width(dim);
        Ok(Block {
            qkv: Dense::new(p, &format!("{name}.qkv"), dim, 3 * dim)?,
            out: Dense::new(p, &format!("{name}.out"), dim, dim)?,
            gate_up: Dense::new(p, &format!("{name}.gate_up"), dim, 2 * ff)?,
            down: Dense::new(p, &format!("{name}.down"), ff, dim)?,
            heads,
            ff,
        })
    }

    /// `h: [batch, T, dim]` to the same shape.
    pub fn forward(&self, h: &Tensor, rotary: &Rotary) -> Result<Tensor> {
        let (b, t, d) = h.dims3()?;
        let dh = d / self.heads;
        let qkv = self.qkv.forward(h)?;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(D::Minus1, i * d, d)?
                .reshape((b, t, self.heads, dh))?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * self.heads, t, dh))
        };
        let q = rotary.apply(&split(0)?)?;
        let k = rotary.apply(&split(1)?)?;
        let v = split(2)?;
        let scores = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?;
        let att = crate::kernels::softmax_last_dim(&scores)?;
        let mixed = att
            .matmul(&v)?
            .reshape((b, self.heads, t, dh))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, d))?;
        let h = rms_norm(&(h + self.out.forward(&mixed)?)?)?;
        let gu = self.gate_up.forward(&h)?;
        let gate = gu.narrow(D::Minus1, 0, self.ff)?;
        let up = gu.narrow(D::Minus1, self.ff, self.ff)?;
        let ff = self.down.forward(&(candle_nn::ops::silu(&gate)? * up)?)?;
        rms_norm(&(h + ff)?)
    }
}

/// A reasoning module (H or L): a stack of blocks over its state plus the
/// injected input.
pub struct ReasoningModule {
    pub(crate) blocks: Vec<Block>,
}

impl ReasoningModule {
    /// `layers` blocks of width `dim`, named `name.block0`, `name.block1`...
    pub fn new(p: &mut Params, name: &str, dim: usize, heads: usize, layers: usize) -> Result<Self> {
        Ok(ReasoningModule {
            blocks: (0..layers)
                .map(|l| Block::new(p, &format!("{name}.block{l}"), dim, heads))
                .collect::<Result<_>>()?,
        })
    }

    /// `f(z, injection) = blocks(z + injection)`.
    pub fn forward(&self, z: &Tensor, injection: &Tensor, rotary: &Rotary) -> Result<Tensor> {
        let mut h = (z + injection)?;
        for block in &self.blocks {
            h = block.forward(&h, rotary)?;
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn rms_norm_gives_unit_root_mean_square() {
        let x = Tensor::new(&[[3f32, 4.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], &Device::Cpu).unwrap();
        let y = rms_norm(&x).unwrap().to_vec2::<f32>().unwrap();
        for row in y {
            let ms: f32 = row.iter().map(|v| v * v).sum::<f32>() / 4.0;
            assert!((ms - 1.0).abs() < 1e-4, "{ms}");
        }
    }

    #[test]
    fn rotary_scores_depend_only_on_relative_position() {
        // q.k after rotation at positions (i, j) equals that at (i+s, j+s).
        let d = 8;
        let rot = Rotary::new(6, d, &Device::Cpu).unwrap();
        let q = Tensor::randn(0f32, 1.0, (1, 1, d), &Device::Cpu).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 1, d), &Device::Cpu).unwrap();
        let at = |x: &Tensor, pos: usize| {
            let seq = x.broadcast_as((1, 6, d)).unwrap().contiguous().unwrap();
            rot.apply(&seq)
                .unwrap()
                .narrow(1, pos, 1)
                .unwrap()
                .flatten_all()
                .unwrap()
        };
        let dot = |a: Tensor, b: Tensor| (a * b).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        let a = dot(at(&q, 1), at(&k, 3));
        let b = dot(at(&q, 3), at(&k, 5));
        let c = dot(at(&q, 1), at(&k, 4));
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        assert!((a - c).abs() > 1e-4, "a different offset gives a different score");
    }

    #[test]
    fn swiglu_width_follows_the_papers_rounding() {
        assert_eq!(swiglu_width(512), 1536);
        assert_eq!(swiglu_width(256), 768);
        assert_eq!(swiglu_width(64), 176);
    }

    #[test]
    fn block_keeps_shape_and_normalises() {
        let mut p = Params::new(1, Device::Cpu);
        let block = Block::new(&mut p, "b", 16, 4).unwrap();
        let rot = Rotary::new(5, 4, &Device::Cpu).unwrap();
        let h = Tensor::randn(0f32, 3.0, (2, 5, 16), &Device::Cpu).unwrap();
        let y = block.forward(&h, &rot).unwrap();
        assert_eq!(y.dims(), &[2, 5, 16]);
        let ms = y
            .sqr()
            .unwrap()
            .mean(D::Minus1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(ms.iter().all(|m| (m - 1.0).abs() < 1e-3), "{ms:?}");
        assert!(Block::new(&mut p, "c", 18, 4).is_err());
    }
}
