//! A pre-norm Transformer encoder over the observation window.
//!
//! ```text
//! h = x W_in + P                                  (P: learned positions)
//! per layer:  a = MHA(LN1(h));  h = h + a
//!             h = h + W_2 relu(W_1 LN2(h))
//! MHA(u) = concat_heads(softmax(Q K^T / sqrt(d_head)) V) W_o,  [Q K V] = u W_qkv
//! ```
//! Attention is two batched matrix multiplies over `[batch * heads, T, d]`;
//! no per-head or per-step loops.

use candle_core::{Result, Tensor, D};

use crate::kernels::{LayerNormOp, LinearOp, LAYER_NORM_EPS};
use crate::params::Params;

/// Layer normalisation over the last dimension with a learned gain and
/// bias (epsilon 1e-5); a fused kernel on the CPU.
pub struct LayerNorm {
    gain: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    /// Gain 1 and bias 0 over `dim` features, named `name.weight` and
    /// `name.bias`.
    pub fn new(p: &mut Params, name: &str, dim: usize) -> Result<Self> {
        Ok(LayerNorm {
            gain: p.constant(&format!("{name}.weight"), &[dim], 1.0)?,
            bias: p.constant(&format!("{name}.bias"), &[dim], 0.0)?,
        })
    }

    /// Normalises over the last dimension of `x: [..., dim]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !x.device().is_cpu() {
            return self.composed(x);
        }
        let dims = x.dims().to_vec();
        let dim = *dims
            .last()
            .ok_or_else(|| candle_core::Error::Msg("layer norm of a scalar".into()))?;
        let rows = x.elem_count() / dim.max(1);
        x.reshape((rows, dim))?
            .apply_op3(&self.gain, &self.bias, LayerNormOp::new())?
            .reshape(dims)
    }

    fn composed(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + LAYER_NORM_EPS as f64)?.sqrt()?)?;
        normed.broadcast_mul(&self.gain)?.broadcast_add(&self.bias)
    }
}

/// A dense layer `x W^T + b` with an orthogonal `W`.
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `input` to `output` features: an orthogonal weight scaled by `gain`
    /// and a zero bias.
    pub fn new(p: &mut Params, name: &str, input: usize, output: usize, gain: f64) -> Result<Self> {
        Ok(Linear {
            weight: p.orthogonal(&format!("{name}.weight"), output, input, gain)?,
            bias: p.constant(&format!("{name}.bias"), &[output], 0.0)?,
        })
    }

    /// A layer whose weights and biases all start at the given constants
    /// (HRM's Q-halting head: weight 0, bias -5, so it starts by continuing).
    pub fn constant(p: &mut Params, name: &str, input: usize, output: usize, weight: f32, bias: f32) -> Result<Self> {
        Ok(Linear {
            weight: p.constant(&format!("{name}.weight"), &[output, input], weight)?,
            bias: p.constant(&format!("{name}.bias"), &[output], bias)?,
        })
    }

    /// The weight `[output, input]` and bias.
    pub fn parts(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }

    /// `x: [..., input]` to `[..., output]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let input = *dims.last().expect("at least one dim");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let x = x.reshape((rows, input))?;
        let y = if x.device().is_cpu() {
            x.apply_op3(&self.weight, &self.bias, LinearOp)?
        } else {
            self.composed(&x)?
        };
        let mut out_dims = dims;
        *out_dims.last_mut().expect("at least one dim") = self.weight.dim(0)?;
        y.reshape(out_dims)
    }

    fn composed(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

/// One pre-norm encoder layer: multi-head self-attention, then a ReLU
/// feed-forward block, each added to its input.
pub struct EncoderLayer {
    ln1: LayerNorm,
    qkv: Linear,
    out: Linear,
    ln2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    heads: usize,
}

impl EncoderLayer {
    /// A layer of width `dim` with `heads` attention heads and a
    /// feed-forward block `ff` wide; fails unless `heads` divides `dim`.
    pub fn new(p: &mut Params, name: &str, dim: usize, heads: usize, ff: usize) -> Result<Self> {
        if heads == 0 || !dim.is_multiple_of(heads) {
            candle_core::bail!("model width {dim} is not divisible by {heads} heads");
        }
        Ok(EncoderLayer {
            ln1: LayerNorm::new(p, &format!("{name}.ln1"), dim)?,
            qkv: Linear::new(p, &format!("{name}.qkv"), dim, 3 * dim, 1.0)?,
            out: Linear::new(p, &format!("{name}.out"), dim, dim, 1.0)?,
            ln2: LayerNorm::new(p, &format!("{name}.ln2"), dim)?,
            ff1: Linear::new(p, &format!("{name}.ff1"), dim, ff, 2f64.sqrt())?,
            ff2: Linear::new(p, &format!("{name}.ff2"), ff, dim, 1.0)?,
            heads,
        })
    }

    /// Attention weights `[batch, heads, T, T]` and the layer output.
    pub fn forward_with_attention(&self, h: &Tensor) -> Result<(Tensor, Tensor)> {
        self.attend(h, false)
    }

    /// `h: [batch, T, dim]` to the layer output, same shape.
    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        Ok(self.attend(h, false)?.1)
    }

    /// The output at the last position only, `[batch, 1, dim]`: every
    /// position is still attended to, but the queries, the feed-forward
    /// block and their gradients are computed for one position instead of T.
    pub fn forward_last(&self, h: &Tensor) -> Result<Tensor> {
        Ok(self.attend(h, true)?.1)
    }

    fn attend(&self, h: &Tensor, last_only: bool) -> Result<(Tensor, Tensor)> {
        let (b, t, d) = h.dims3()?;
        let dh = d / self.heads;
        let qkv = self.qkv.forward(&self.ln1.forward(h)?)?;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(D::Minus1, i * d, d)?
                .reshape((b, t, self.heads, dh))?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b * self.heads, t, dh))
        };
        let (mut q, k, v) = (split(0)?, split(1)?, split(2)?);
        let (mut h, mut tq) = (h.clone(), t);
        if last_only {
            q = q.narrow(1, t - 1, 1)?;
            h = h.narrow(1, t - 1, 1)?;
            tq = 1;
        }
        let scores = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?;
        let att = crate::kernels::softmax_last_dim(&scores)?;
        let mixed = att
            .matmul(&v)?
            .reshape((b, self.heads, tq, dh))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, tq, d))?;
        let h = (h + self.out.forward(&mixed)?)?;
        let ff = self.ff2.forward(&self.ff1.forward(&self.ln2.forward(&h)?)?.relu()?)?;
        Ok((att.reshape((b, self.heads, tq, t))?, (h + ff)?))
    }
}

/// Input projection, learned positions, and a stack of encoder layers.
pub struct Encoder {
    input: Linear,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    norm: LayerNorm,
}

impl Encoder {
    /// `layers` encoder layers of width `dim` (feed-forward `4 dim` wide)
    /// over windows of exactly `window` steps of `input` features; positions
    /// start as N(0, 0.02²).
    pub fn new(
        p: &mut Params,
        name: &str,
        input: usize,
        window: usize,
        dim: usize,
        heads: usize,
        layers: usize,
    ) -> Result<Self> {
        Ok(Encoder {
            input: Linear::new(p, &format!("{name}.input"), input, dim, 1.0)?,
            positions: p.normal(&format!("{name}.positions"), &[window, dim], 0.02)?,
            layers: (0..layers)
                .map(|l| EncoderLayer::new(p, &format!("{name}.layer{l}"), dim, heads, 4 * dim))
                .collect::<Result<_>>()?,
            norm: LayerNorm::new(p, &format!("{name}.norm"), dim)?,
        })
    }

    /// `x: [batch, window, input]` to `[batch, window, dim]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.input.forward(x)?.broadcast_add(&self.positions)?;
        for layer in &self.layers {
            h = layer.forward(&h)?;
        }
        self.norm.forward(&h)
    }

    /// The encoding of the window's last position, `[batch, dim]`: equal to
    /// `forward(x)` at the last step, with the last layer computed for that
    /// position only.
    pub fn forward_last(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.input.forward(x)?.broadcast_add(&self.positions)?;
        let Some((last, rest)) = self.layers.split_last() else {
            let t = h.dim(1)?;
            return self.norm.forward(&h.narrow(1, t - 1, 1)?.squeeze(1)?);
        };
        for layer in rest {
            h = layer.forward(&h)?;
        }
        self.norm.forward(&last.forward_last(&h)?.squeeze(1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn shapes_attention_rows_and_gradients() {
        let mut p = Params::new(5, Device::Cpu);
        let enc = Encoder::new(&mut p, "tf", 6, 10, 16, 4, 2).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 10, 6), &Device::Cpu).unwrap();
        let y = enc.forward(&x).unwrap();
        assert_eq!(y.dims(), &[3, 10, 16]);
        let (att, _) = enc.layers[0]
            .forward_with_attention(&enc.input.forward(&x).unwrap())
            .unwrap();
        assert_eq!(att.dims(), &[3, 4, 10, 10]);
        let sums = att
            .sum(D::Minus1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "attention rows sum to 1");
        let grads = y.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let missing: Vec<_> = p
            .tensors()
            .into_iter()
            .filter(|(_, t)| grads.get(t).is_none())
            .map(|(n, _)| n)
            .collect();
        assert!(missing.is_empty(), "no gradient for {missing:?}");
    }

    #[test]
    fn layer_norm_normalises_the_last_dimension() {
        let mut p = Params::new(1, Device::Cpu);
        let ln = LayerNorm::new(&mut p, "ln", 4).unwrap();
        let x = Tensor::new(&[[1f32, 2.0, 3.0, 4.0], [10.0, 10.0, 10.0, 14.0]], &Device::Cpu).unwrap();
        let y = ln.forward(&x).unwrap();
        let mean = y.mean(D::Minus1).unwrap().to_vec1::<f32>().unwrap();
        let var = y.sqr().unwrap().mean(D::Minus1).unwrap().to_vec1::<f32>().unwrap();
        assert!(mean.iter().all(|m| m.abs() < 1e-5) && var.iter().all(|v| (v - 1.0).abs() < 1e-3));
        assert!(EncoderLayer::new(&mut p, "bad", 10, 3, 8).is_err());
        let _ = DType::F32;
    }

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn assert_close(a: &[f32], b: &[f32], tol: f32, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().map(|v| v.abs()).fold(1e-3, f32::max);
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() <= tol * scale, "{what}: {u} vs {v}");
        }
    }

    #[test]
    fn last_position_path_equals_the_full_encoder_at_the_last_step() {
        let mut p = Params::new(8, Device::Cpu);
        let enc = Encoder::new(&mut p, "tf", 6, 10, 16, 4, 2).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 10, 6), &Device::Cpu).unwrap();
        let full = enc.forward(&x).unwrap().narrow(1, 9, 1).unwrap().squeeze(1).unwrap();
        let last = enc.forward_last(&x).unwrap();
        assert_eq!(last.dims(), &[3, 16]);
        assert_close(&flat(&last), &flat(&full), 1e-5, "last position");
    }

    /// The fused dense layer and layer norm against candle's composed
    /// operations: outputs and gradients of input, weights and biases.
    #[test]
    fn fused_linear_and_layer_norm_match_composed_operations() {
        let d = Device::Cpu;
        let mut p = Params::new(3, d.clone());
        let lin = Linear::new(&mut p, "lin", 7, 5, 1.0).unwrap();
        let ln = LayerNorm::new(&mut p, "ln", 5).unwrap();
        // Non-trivial biases and gains.
        for (name, var) in p.named_vars() {
            if name.ends_with("bias") || name == "ln.weight" {
                let dims = var.as_tensor().dims().to_vec();
                var.set(&Tensor::randn(0.5f32, 0.3, dims, &d).unwrap()).unwrap();
            }
        }
        let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (9, 7), &d).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (9, 5), &d).unwrap();
        let fused = ln.forward(&lin.forward(x.as_tensor()).unwrap()).unwrap();
        let composed = ln.composed(&lin.composed(x.as_tensor()).unwrap()).unwrap();
        assert_close(&flat(&fused), &flat(&composed), 1e-5, "output");
        let gf = (&fused * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gc = (&composed * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let mut tensors: Vec<(String, Tensor)> = p.tensors().into_iter().collect();
        tensors.push(("x".into(), x.as_tensor().clone()));
        for (name, t) in tensors {
            assert_close(&flat(gf.get(&t).unwrap()), &flat(gc.get(&t).unwrap()), 1e-4, &name);
        }
    }
}
