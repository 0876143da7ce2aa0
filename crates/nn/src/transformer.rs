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

use crate::params::Params;

pub struct LayerNorm {
    gain: Tensor,
    bias: Tensor,
}

impl LayerNorm {
    pub fn new(p: &mut Params, name: &str, dim: usize) -> Result<Self> {
        Ok(LayerNorm {
            gain: p.constant(&format!("{name}.weight"), &[dim], 1.0)?,
            bias: p.constant(&format!("{name}.bias"), &[dim], 0.0)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + 1e-5)?.sqrt()?)?;
        normed.broadcast_mul(&self.gain)?.broadcast_add(&self.bias)
    }
}

/// A dense layer `x W^T + b` with an orthogonal `W`.
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(p: &mut Params, name: &str, input: usize, output: usize, gain: f64) -> Result<Self> {
        Ok(Linear {
            weight: p.orthogonal(&format!("{name}.weight"), output, input, gain)?,
            bias: p.constant(&format!("{name}.bias"), &[output], 0.0)?,
        })
    }

    /// `x: [..., input]` to `[..., output]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let input = *dims.last().expect("at least one dim");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let y = x
            .reshape((rows, input))?
            .matmul(&self.weight.t()?)?
            .broadcast_add(&self.bias)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("at least one dim") = self.weight.dim(0)?;
        y.reshape(out_dims)
    }
}

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
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?;
        let att = candle_nn::ops::softmax_last_dim(&scores)?;
        let mixed = att
            .matmul(&v)?
            .reshape((b, self.heads, t, dh))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, d))?;
        let h = (h + self.out.forward(&mixed)?)?;
        let ff = self.ff2.forward(&self.ff1.forward(&self.ln2.forward(&h)?)?.relu()?)?;
        Ok((att.reshape((b, self.heads, t, t))?, (h + ff)?))
    }

    pub fn forward(&self, h: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with_attention(h)?.1)
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
}
