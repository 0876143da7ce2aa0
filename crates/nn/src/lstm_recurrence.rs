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
//! The input projection is fused in as well: `x W_ih^T + b` for every step
//! is one multiply into the gate buffer, and its gradient one multiply out
//! of it, so the `[T, B, 4H]` projections and their gradient never become
//! candle tensors (candle would zero-fill and add a gradient that size).
//!
//! Inputs: `x` time major `[T, B, F]`, `[W_ih | b]: [4H, F + 1]` (the bias
//! as a last column) and `W_hh: [4H, H]`. Output: the last hidden state
//! `[B, H]`, or every step's `[T, B, H]`. Gate order i, f, g, o as in
//! PyTorch.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Tensor};

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

pub(crate) struct LstmLayer {
    pub all_steps: bool,
    saved: Mutex<Option<Saved>>,
}

impl LstmLayer {
    pub fn new(all_steps: bool) -> Self {
        LstmLayer {
            all_steps,
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp3 for LstmLayer {
    fn name(&self) -> &'static str {
        "lstm-layer"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (t, b, f) = l1.shape().dims3()?;
        let (rows_ih, f1) = l2.shape().dims2()?;
        let (rows, h) = l3.shape().dims2()?;
        if rows != 4 * h || rows_ih != 4 * h || f1 != f + 1 || t == 0 || b == 0 {
            return Err(Error::Msg(format!(
                "lstm layer: input {:?}, input weights with bias {:?} and recurrent weights {:?} do not fit",
                l1.shape(),
                l2.shape(),
                l3.shape()
            )));
        }
        let x = storage_f32(s1, l1, "lstm layer: input")?;
        let w_aug = storage_f32(s2, l2, "lstm layer: input weights")?;
        let w_hh = storage_f32(s3, l3, "lstm layer: recurrent weights")?;
        let (bh, g4) = (b * h, b * 4 * h);
        // Every step's input projection in one multiply, then the bias.
        let mut gates = vec![0f32; t * g4];
        matmul(&mut gates, false, (t * b, 4 * h, f), (x, f, 1), (w_aug, 1, f + 1));
        for row in gates.chunks_exact_mut(4 * h) {
            for (r, g) in row.iter_mut().enumerate() {
                *g += w_aug[r * (f + 1) + f];
            }
        }

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
        x: &Tensor,
        w_aug: &Tensor,
        w_hh: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (t, b, f) = x.dims3()?;
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
        // [dW_ih | db] = d_gates^T [x | 1] over all steps.
        let xs = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let mut d_w_ih = vec![0f32; 4 * h * f];
        matmul(&mut d_w_ih, false, (4 * h, f, t * b), (&d_gates, 1, 4 * h), (&xs, f, 1));
        let mut d_aug = vec![0f32; 4 * h * (f + 1)];
        for (r, row) in d_aug.chunks_exact_mut(f + 1).enumerate() {
            row[..f].copy_from_slice(&d_w_ih[r * f..(r + 1) * f]);
        }
        for g in d_gates.chunks_exact(4 * h) {
            for (r, v) in g.iter().enumerate() {
                d_aug[r * (f + 1) + f] += v;
            }
        }
        // The input is usually data; its gradient only when it is tracked.
        let d_x = if x.track_op() {
            let wa = w_aug.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
            let mut dx = vec![0f32; t * b * f];
            matmul(&mut dx, false, (t * b, f, 4 * h), (&d_gates, 4 * h, 1), (&wa, f + 1, 1));
            Some(Tensor::from_vec(dx, (t, b, f), x.device())?)
        } else {
            None
        };
        let device = x.device();
        Ok((
            d_x,
            Some(Tensor::from_vec(d_aug, (4 * h, f + 1), device)?),
            Some(Tensor::from_vec(d_w, (4 * h, h), device)?),
        ))
    }
}
