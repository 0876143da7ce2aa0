//! A single-layer LSTM with fused gates (PyTorch's layout and gate order).
//!
//! ```text
//! [i f g o] = x_t W_ih^T + h_{t-1} W_hh^T + b
//! i, f, o = sigmoid(.), g = tanh(.)
//! c_t = f * c_{t-1} + i * g
//! h_t = o * tanh(c_t)
//! ```

use candle_core::{DType, Result, Tensor, D};

use crate::params::Params;

pub struct Lstm {
    w_ih: Tensor,
    w_hh: Tensor,
    bias: Tensor,
    hidden: usize,
}

impl Lstm {
    /// Orthogonal weights with gain 1 and zero biases, as the PPO reference
    /// prescribes for recurrent policies (algorithms.md section 4.5).
    pub fn new(p: &mut Params, name: &str, input: usize, hidden: usize) -> Result<Self> {
        let w_ih = p.orthogonal(&format!("{name}.weight_ih"), 4 * hidden, input, 1.0)?;
        let w_hh = p.orthogonal(&format!("{name}.weight_hh"), 4 * hidden, hidden, 1.0)?;
        let bias = p.constant(&format!("{name}.bias"), &[4 * hidden], 0.0)?;
        Ok(Lstm {
            w_ih,
            w_hh,
            bias,
            hidden,
        })
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Runs over `x: [batch, time, input]` from zero state; returns every
    /// step's hidden state `[batch, time, hidden]` and the final `(h, c)`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let mut outputs = Vec::with_capacity(x.dim(1)?);
        let (h, c) = self.run(x, Some(&mut outputs))?;
        Ok((Tensor::stack(&outputs, 1)?, h, c))
    }

    /// The final `(h, c)` only: what a policy reading the window's last
    /// step needs, without keeping (and backpropagating through) a stacked
    /// copy of every step's output.
    pub fn forward_last(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        self.run(x, None)
    }

    fn run(&self, x: &Tensor, mut outputs: Option<&mut Vec<Tensor>>) -> Result<(Tensor, Tensor)> {
        let (b, t, _) = x.dims3()?;
        let n = self.hidden;
        // Time-major input so each step's slice is contiguous. The input is
        // projected per step rather than for all steps up front: candle's
        // gradient of a slice is a zero-padded copy of the whole sliced
        // tensor, so slicing the narrow input costs far less than slicing a
        // [time, batch, 4 hidden] projection.
        let x = x.transpose(0, 1)?.contiguous()?;
        let w_ih_t = self.w_ih.t()?;
        let w_hh_t = self.w_hh.t()?;
        let mut h = Tensor::zeros((b, n), DType::F32, x.device())?;
        let mut c = h.clone();
        for step in 0..t {
            let gates = (x.get(step)?.matmul(&w_ih_t)? + h.matmul(&w_hh_t)?)?.broadcast_add(&self.bias)?;
            // One sigmoid over all four gates (g's share is discarded).
            let s = candle_nn::ops::sigmoid(&gates)?;
            let i = s.narrow(D::Minus1, 0, n)?;
            let fg = s.narrow(D::Minus1, n, n)?;
            let o = s.narrow(D::Minus1, 3 * n, n)?;
            let g = gates.narrow(D::Minus1, 2 * n, n)?.tanh()?;
            c = ((fg * &c)? + (i * g)?)?;
            h = (o * c.tanh()?)?;
            if let Some(out) = outputs.as_deref_mut() {
                out.push(h.clone());
            }
        }
        Ok((h, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// The equations in the module docs, one scalar at a time.
    fn reference(w_ih: &[Vec<f32>], w_hh: &[Vec<f32>], bias: &[f32], xs: &[Vec<f32>], n: usize) -> Vec<f64> {
        let (mut h, mut c) = (vec![0f64; n], vec![0f64; n]);
        for x in xs {
            let pre: Vec<f64> = (0..4 * n)
                .map(|r| {
                    bias[r] as f64
                        + w_ih[r].iter().zip(x).map(|(w, v)| *w as f64 * *v as f64).sum::<f64>()
                        + w_hh[r].iter().zip(&h).map(|(w, v)| *w as f64 * v).sum::<f64>()
                })
                .collect();
            for j in 0..n {
                let (i, f, g, o) = (
                    sigmoid(pre[j]),
                    sigmoid(pre[n + j]),
                    pre[2 * n + j].tanh(),
                    sigmoid(pre[3 * n + j]),
                );
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
            }
        }
        h
    }

    #[test]
    fn matches_the_scalar_equations() {
        let mut p = Params::new(3, Device::Cpu);
        let lstm = Lstm::new(&mut p, "l", 3, 4).unwrap();
        let xs: Vec<Vec<f32>> = (0..6)
            .map(|t| (0..3).map(|k| ((t * 3 + k) as f32 * 0.37).sin()).collect())
            .collect();
        let x = Tensor::from_vec(xs.concat(), (1, 6, 3), &Device::Cpu).unwrap();
        let (out, h, _) = lstm.forward(&x).unwrap();
        let want = reference(
            &lstm.w_ih.to_vec2().unwrap(),
            &lstm.w_hh.to_vec2().unwrap(),
            &lstm.bias.to_vec1().unwrap(),
            &xs,
            4,
        );
        let got = h.to_vec2::<f32>().unwrap()[0].clone();
        for (g, w) in got.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
        }
        let last = out
            .narrow(1, 5, 1)
            .unwrap()
            .squeeze(1)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(last[0], got);
    }

    #[test]
    fn gradients_reach_every_parameter() {
        let mut p = Params::new(4, Device::Cpu);
        let lstm = Lstm::new(&mut p, "l", 2, 3).unwrap();
        let x = Tensor::ones((2, 4, 2), DType::F32, &Device::Cpu).unwrap();
        let (_, h, _) = lstm.forward(&x).unwrap();
        let grads = h.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        for v in p.vars() {
            let g = grads.get(v.as_tensor()).expect("gradient present");
            assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
        }
    }
}
