//! The LSTM's recurrence as one fused CPU operation with a hand-written
//! backward pass (backpropagation through time), as cuDNN fuses it on GPUs.
//!
//! Composed from candle operations, each of a window's 32 steps costs a
//! dozen tensor allocations forward and more backward, and candle's
//! gradient of every gate slice is a zero-padded copy of the whole gate
//! tensor. Fused, a step is one matrix multiply into a buffer allocated
//! once, then one pass over the gates; the forward pass keeps the gate
//! activations so the backward pass never recomputes them.
//!
//! Input: the input projections of every step, `xp = x W_ih^T + b`, time
//! major `[T, B, 4H]` (one large multiply that candle differentiates), and
//! `W_hh: [4H, H]`. Output: the last hidden state `[B, H]`, or every step's
//! `[T, B, H]`. Gate order i, f, g, o as in PyTorch.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Error, Layout, Result, Shape, Tensor};

use crate::kernels::{fast_sigmoid, fast_tanh, matmul, storage_f32};

/// What the forward pass keeps for the backward pass.
struct Saved {
    /// Gate activations `[T, B, 4H]`: sigmoid(i), sigmoid(f), tanh(g), sigmoid(o).
    gates: Vec<f32>,
    /// Cell states `[T + 1, B, H]`, `c_0 = 0` first.
    cells: Vec<f32>,
    /// Hidden states `[T + 1, B, H]`, `h_0 = 0` first.
    hiddens: Vec<f32>,
}

pub(crate) struct LstmRecurrence {
    pub all_steps: bool,
    saved: Mutex<Option<Saved>>,
}

impl LstmRecurrence {
    pub fn new(all_steps: bool) -> Self {
        LstmRecurrence {
            all_steps,
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp2 for LstmRecurrence {
    fn name(&self) -> &'static str {
        "lstm-recurrence"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (t, b, four_h) = l1.shape().dims3()?;
        let (rows, h) = l2.shape().dims2()?;
        if four_h != 4 * h || rows != 4 * h || t == 0 || b == 0 {
            return Err(Error::Msg(format!(
                "lstm recurrence: projections {:?} do not match recurrent weights {:?}",
                l1.shape(),
                l2.shape()
            )));
        }
        let xp = storage_f32(s1, l1, "lstm recurrence: input projections")?;
        let w_hh = storage_f32(s2, l2, "lstm recurrence: recurrent weights")?;
        let (bh, g4) = (b * h, b * 4 * h);
        let mut gates = xp.to_vec();
        let mut cells = vec![0f32; (t + 1) * bh];
        let mut hiddens = vec![0f32; (t + 1) * bh];
        for step in 0..t {
            let (done, rest) = hiddens.split_at_mut((step + 1) * bh);
            let h_prev = &done[step * bh..];
            let g = &mut gates[step * g4..(step + 1) * g4];
            if step > 0 {
                // g += h_{t-1} W_hh^T (h_0 = 0 adds nothing).
                matmul(g, true, (b, 4 * h, h), (h_prev, h, 1), (w_hh, 1, h));
            }
            let (c_done, c_rest) = cells.split_at_mut((step + 1) * bh);
            let c_prev = &c_done[step * bh..];
            for r in 0..b {
                let row = &mut g[r * 4 * h..(r + 1) * 4 * h];
                for j in 0..h {
                    let i = fast_sigmoid(row[j]);
                    let f = fast_sigmoid(row[h + j]);
                    let gg = fast_tanh(row[2 * h + j]);
                    let o = fast_sigmoid(row[3 * h + j]);
                    row[j] = i;
                    row[h + j] = f;
                    row[2 * h + j] = gg;
                    row[3 * h + j] = o;
                    let c = f * c_prev[r * h + j] + i * gg;
                    c_rest[r * h + j] = c;
                    rest[r * h + j] = o * fast_tanh(c);
                }
            }
        }
        let (out, shape) = if self.all_steps {
            (hiddens[bh..].to_vec(), Shape::from((t, b, h)))
        } else {
            (hiddens[t * bh..].to_vec(), Shape::from((b, h)))
        };
        *self
            .saved
            .lock()
            .map_err(|_| Error::Msg("lstm recurrence: poisoned cache".into()))? = Some(Saved { gates, cells, hiddens });
        Ok((CpuStorage::F32(out), shape))
    }

    fn bwd(
        &self,
        xp: &Tensor,
        w_hh: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (t, b, _) = xp.dims3()?;
        let h = w_hh.dim(1)?;
        let guard = self
            .saved
            .lock()
            .map_err(|_| Error::Msg("lstm recurrence: poisoned cache".into()))?;
        let saved = guard
            .as_ref()
            .ok_or_else(|| Error::Msg("lstm recurrence: backward before forward".into()))?;
        let w = w_hh.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let grad_out = grad_res.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let (bh, g4) = (b * h, b * 4 * h);

        let mut d_gates = vec![0f32; t * g4];
        let mut dh = vec![0f32; bh];
        let mut dc = vec![0f32; bh];
        if !self.all_steps {
            dh.copy_from_slice(&grad_out);
        }
        for step in (0..t).rev() {
            if self.all_steps {
                for (d, g) in dh.iter_mut().zip(&grad_out[step * bh..(step + 1) * bh]) {
                    *d += g;
                }
            }
            let acts = &saved.gates[step * g4..(step + 1) * g4];
            let c_prev = &saved.cells[step * bh..(step + 1) * bh];
            let c_now = &saved.cells[(step + 1) * bh..(step + 2) * bh];
            let dg = &mut d_gates[step * g4..(step + 1) * g4];
            for r in 0..b {
                let a = &acts[r * 4 * h..(r + 1) * 4 * h];
                let d = &mut dg[r * 4 * h..(r + 1) * 4 * h];
                for j in 0..h {
                    let k = r * h + j;
                    let (i, f, gg, o) = (a[j], a[h + j], a[2 * h + j], a[3 * h + j]);
                    let tc = fast_tanh(c_now[k]);
                    let dcell = dc[k] + dh[k] * o * (1.0 - tc * tc);
                    d[j] = dcell * gg * i * (1.0 - i);
                    d[h + j] = dcell * c_prev[k] * f * (1.0 - f);
                    d[2 * h + j] = dcell * i * (1.0 - gg * gg);
                    d[3 * h + j] = dh[k] * tc * o * (1.0 - o);
                    dc[k] = dcell * f;
                }
            }
            if step > 0 {
                // dh_{t-1} = d_gates_t W_hh.
                matmul(&mut dh, false, (b, h, 4 * h), (dg, 4 * h, 1), (&w, h, 1));
            }
        }
        // dW_hh = sum_t d_gates_t^T h_{t-1}, as one multiply over all steps
        // (h_0 = 0 contributes nothing, so the step-0 rows are harmless).
        let mut d_w = vec![0f32; 4 * h * h];
        matmul(
            &mut d_w,
            false,
            (4 * h, h, t * b),
            (&d_gates, 1, 4 * h),
            (&saved.hiddens[..t * bh], h, 1),
        );
        let device = xp.device();
        Ok((
            Some(Tensor::from_vec(d_gates, (t, b, 4 * h), device)?),
            Some(Tensor::from_vec(d_w, (4 * h, h), device)?),
        ))
    }
}
