//! A single-layer LSTM with fused gates (PyTorch's layout and gate order).
//!
//! ```text
//! [i f g o] = x_t W_ih^T + h_{t-1} W_hh^T + b
//! i, f, o = sigmoid(.), g = tanh(.)
//! c_t = f * c_{t-1} + i * g
//! h_t = o * tanh(c_t)
//! ```

use candle_core::{DType, Result, Tensor, D};

use crate::lstm_recurrence::LstmLayer;
use crate::params::Params;

/// The LSTM's weights: `W_ih [4 hidden, input]`, `W_hh [4 hidden, hidden]`
/// and one bias `[4 hidden]`, gates in the order i, f, g, o.
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

    /// Width of the hidden (and cell) state.
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// Runs over `x: [batch, time, input]` from zero state; returns every
    /// step's hidden state `[batch, time, hidden]` and the last `[batch, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = x.dim(1)?;
        let all = self.recurrence(x, true)?.transpose(0, 1)?.contiguous()?;
        let last = all.narrow(1, t - 1, 1)?.squeeze(1)?;
        Ok((all, last))
    }

    /// The last hidden state `[batch, hidden]` only: what a policy reading
    /// the window's last step needs.
    pub fn forward_last(&self, x: &Tensor) -> Result<Tensor> {
        self.recurrence(x, false)
    }

    /// `[time, batch, hidden]` with `all_steps`, else `[batch, hidden]`.
    fn recurrence(&self, x: &Tensor, all_steps: bool) -> Result<Tensor> {
        let (b, t, input) = x.dims3()?;
        // Time major, so the recurrence reads each step contiguously.
        let x_tm = x.transpose(0, 1)?.contiguous()?;
        if x.device().is_cpu() {
            let w_aug = Tensor::cat(&[&self.w_ih, &self.bias.unsqueeze(1)?], 1)?;
            x_tm.apply_op3(&w_aug, &self.w_hh, LstmLayer::new(all_steps))
        } else {
            let projections = x_tm
                .reshape((t * b, input))?
                .matmul(&self.w_ih.t()?)?
                .broadcast_add(&self.bias)?
                .reshape((t, b, 4 * self.hidden))?;
            self.composed(&projections, all_steps)
        }
    }

    /// The same recurrence from candle operations: for devices without the
    /// fused CPU kernel, and the reference the kernel is tested against.
    fn composed(&self, projections: &Tensor, all_steps: bool) -> Result<Tensor> {
        let (t, b, _) = projections.dims3()?;
        let n = self.hidden;
        let w_hh_t = self.w_hh.t()?;
        let mut h = Tensor::zeros((b, n), DType::F32, projections.device())?;
        let mut c = h.clone();
        let mut outputs = Vec::with_capacity(t);
        for step in 0..t {
            let gates = (projections.get(step)? + h.matmul(&w_hh_t)?)?;
            let s = candle_nn::ops::sigmoid(&gates)?;
            let i = s.narrow(D::Minus1, 0, n)?;
            let fg = s.narrow(D::Minus1, n, n)?;
            let o = s.narrow(D::Minus1, 3 * n, n)?;
            let g = gates.narrow(D::Minus1, 2 * n, n)?.tanh()?;
            c = ((fg * &c)? + (i * g)?)?;
            h = (o * c.tanh()?)?;
            if all_steps {
                outputs.push(h.clone());
            }
        }
        if all_steps {
            Tensor::stack(&outputs, 0)
        } else {
            Ok(h)
        }
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
        let (out, h) = lstm.forward(&x).unwrap();
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
        let h = lstm.forward_last(&x).unwrap();
        let grads = h.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        for v in p.vars() {
            let g = grads.get(v.as_tensor()).expect("gradient present");
            assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
        }
    }

    /// The fused kernel against the composed candle operations: outputs and
    /// the gradients of the input and every parameter, for the last step
    /// and for every step's output.
    #[test]
    fn fused_recurrence_matches_candle_operations_forward_and_backward() {
        let d = Device::Cpu;
        let mut p = Params::new(11, d.clone());
        let lstm = Lstm::new(&mut p, "l", 5, 6).unwrap();
        // Non-zero biases so their gradient path is exercised too.
        let bias = Tensor::randn(0f32, 0.5, 24, &d).unwrap();
        let vars = p.named_vars();
        vars.iter().find(|(n, _)| n == "l.bias").unwrap().1.set(&bias).unwrap();
        let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 7, 5), &d).unwrap()).unwrap();
        let weights = Tensor::randn(0f32, 1.0, (3, 7, 6), &d).unwrap();
        for all_steps in [false, true] {
            let projections = x
                .as_tensor()
                .transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((21, 5))
                .unwrap()
                .matmul(&lstm.w_ih.t().unwrap())
                .unwrap()
                .broadcast_add(&lstm.bias)
                .unwrap()
                .reshape((7, 3, 24))
                .unwrap();
            let fused = lstm.recurrence(x.as_tensor(), all_steps).unwrap();
            let composed = lstm.composed(&projections, all_steps).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (a, b) in flat(&fused).iter().zip(flat(&composed)) {
                assert!((a - b).abs() < 1e-5, "output {a} vs {b}");
            }
            // A loss that weighs every output differently.
            let loss = |out: &Tensor| {
                let w = if all_steps {
                    weights.transpose(0, 1).unwrap().contiguous().unwrap()
                } else {
                    weights.get_on_dim(1, 6).unwrap()
                };
                (out * w).unwrap().sum_all().unwrap()
            };
            let g_fused = loss(&fused).backward().unwrap();
            let g_composed = loss(&composed).backward().unwrap();
            let mut tensors: Vec<&Tensor> = vec![x.as_tensor()];
            tensors.extend([&lstm.w_ih, &lstm.w_hh, &lstm.bias]);
            for t in tensors {
                let (a, b) = (flat(g_fused.get(t).unwrap()), flat(g_composed.get(t).unwrap()));
                let scale = b.iter().map(|v| v.abs()).fold(1e-3, f32::max);
                for (u, v) in a.iter().zip(&b) {
                    assert!(
                        (u - v).abs() < 1e-4 * scale,
                        "all_steps {all_steps}: gradient {u} vs {v}"
                    );
                }
            }
        }
    }
}
