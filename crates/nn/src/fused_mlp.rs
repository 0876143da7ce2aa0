//! The MLP policy ([`EncoderKind::Mlp`](crate::policy::EncoderKind)) written
//! out on flat f32 buffers: a batched forward pass and its hand-derived
//! backward pass, over the same parameters (names, shapes, order) as the
//! candle [`PolicyNet`](crate::policy::PolicyNet).
//!
//! Why a second form: at MLP sizes one PPO iteration is a few matrix
//! multiplies buried under hundreds of small operations, and candle's cost
//! per operation (a new tensor per op, a zeroed gradient per intermediate
//! in the backward pass) outweighs the arithmetic. Here an iteration
//! allocates nothing: activations live in [`MlpScratch`], gradients in the
//! caller's flat vector, and the multiplies go straight to `gemm` (the
//! first layer's input gradient, which nothing needs, is never computed).
//! The candle network stays the reference that tests compare against, and
//! the form that evaluation, serving and checkpoints use.
//!
//! Kernel order: the flat vector here holds the encoder and trunk weights
//! transposed (`[in, out]`, where candle has `[out, in]`), because gemm
//! multiplies by a row-major `[in, out]` right-hand side without repacking
//! it: at a rollout's 8 rows that is 5 us instead of 14 us for the first
//! layer (measured). [`MlpLayout::to_kernel_order`] and
//! [`MlpLayout::to_model_order`] convert; Adam, being elementwise, runs on
//! either order.
//!
//! ```text
//! h1 = tanh(W1 window + b1)                       [H]
//! j  = [h1, account, inst_emb(i), tf_emb(k)]     [H + A + 64 + 32]
//! z  = tanh(W2 j + b2)                            [H]
//! out = [W_pi z + b_pi (5), W_q z + b_q (2), W_v z + b_v (1)]
//! ```

use crate::kernels::{fast_tanh, matmul_with, Parallelism};
use crate::policy::{INSTRUMENT_EMBEDDING, TIMEFRAME_EMBEDDING};
use crate::simd::wide;

/// Head outputs per row: 5 logits, the Beta's two raw concentrations, the value.
pub const OUTPUTS: usize = 8;
/// Column of the Beta's raw alpha in a row of outputs (the logits are
/// columns 0 to 4).
pub const RAW_ALPHA: usize = 5;
/// Column of the Beta's raw beta in a row of outputs.
pub const RAW_BETA: usize = 6;
/// Column of the value estimate in a row of outputs.
pub const VALUE: usize = 7;

/// Sizes of the MLP policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MlpShape {
    /// Window length times features: the flattened window.
    pub window_len: usize,
    /// Width of each row's account-state vector.
    pub account: usize,
    /// Width of the encoder layer and of the trunk.
    pub hidden: usize,
    /// Rows of the instrument embedding (at least one is made).
    pub instruments: usize,
    /// Rows of the timeframe embedding (at least one is made).
    pub timeframes: usize,
}

impl MlpShape {
    /// Width of the trunk's input `j`.
    pub fn joined(&self) -> usize {
        self.hidden + self.account + INSTRUMENT_EMBEDDING + TIMEFRAME_EMBEDDING
    }
}

/// Offsets of each tensor in a flat parameter vector.
#[derive(Debug, Clone)]
pub struct MlpLayout {
    /// The sizes the offsets were computed for.
    pub shape: MlpShape,
    encoder_w: usize,
    encoder_b: usize,
    instrument: usize,
    timeframe: usize,
    trunk_w: usize,
    trunk_b: usize,
    /// Weight and bias offsets of output column `o` (policy rows, then
    /// quantity rows, then value).
    head_w: [usize; OUTPUTS],
    head_b: [usize; OUTPUTS],
    /// Length of the whole flat vector (every parameter, scalar by scalar).
    pub total: usize,
}

impl MlpLayout {
    /// The layout of a flat vector holding `tensors` (name, element count)
    /// one after another in the given order, which must be exactly the
    /// MLP policy's twelve tensors with the sizes `shape` implies.
    pub fn new(shape: MlpShape, tensors: &[(String, usize)]) -> Result<Self, String> {
        let (h, j) = (shape.hidden, shape.joined());
        let expected = [
            ("encoder.mlp.weight", h * shape.window_len),
            ("encoder.mlp.bias", h),
            ("embedding.instrument", shape.instruments.max(1) * INSTRUMENT_EMBEDDING),
            ("embedding.timeframe", shape.timeframes.max(1) * TIMEFRAME_EMBEDDING),
            ("trunk.weight", h * j),
            ("trunk.bias", h),
            ("head.policy.weight", 5 * h),
            ("head.policy.bias", 5),
            ("head.quantity.weight", 2 * h),
            ("head.quantity.bias", 2),
            ("head.value.weight", h),
            ("head.value.bias", 1),
        ];
        if tensors.len() != expected.len() {
            return Err(format!(
                "the MLP policy has {} tensors, got {}",
                expected.len(),
                tensors.len()
            ));
        }
        let mut offset = std::collections::BTreeMap::new();
        let mut at = 0;
        for (name, len) in tensors {
            offset.insert(name.as_str(), (at, *len));
            at += len;
        }
        let mut get = |name: &str, len: usize| -> Result<usize, String> {
            match offset.remove(name) {
                Some((o, l)) if l == len => Ok(o),
                Some((_, l)) => Err(format!("`{name}` has {l} values, the MLP policy needs {len}")),
                None => Err(format!("the MLP policy's `{name}` is missing")),
            }
        };
        let mut o = [0; 12];
        for (slot, (name, len)) in o.iter_mut().zip(expected) {
            *slot = get(name, len)?;
        }
        let head_w = std::array::from_fn(|c| match c {
            0..5 => o[6] + c * h,
            5..7 => o[8] + (c - 5) * h,
            _ => o[10],
        });
        let head_b = std::array::from_fn(|c| match c {
            0..5 => o[7] + c,
            5..7 => o[9] + c - 5,
            _ => o[11],
        });
        Ok(MlpLayout {
            shape,
            encoder_w: o[0],
            encoder_b: o[1],
            instrument: o[2],
            timeframe: o[3],
            trunk_w: o[4],
            trunk_b: o[5],
            head_w,
            head_b,
            total: at,
        })
    }
}

/// Activations of one batch, kept for the backward pass, plus its scratch.
/// Sized once for the largest batch; reused.
#[derive(Debug, Default)]
pub struct MlpScratch {
    rows: usize,
    h1: Vec<f32>,
    /// The trunk input's per-row part `[h1, account]`, `[rows, H + A]`.
    trunk_in: Vec<f32>,
    /// The batch's distinct markets, each row's index among them, and per
    /// market the trunk's pre-activation from its embeddings plus the bias.
    markets: Vec<(usize, usize)>,
    row_market: Vec<usize>,
    market_bias: Vec<f32>,
    z: Vec<f32>,
    /// `[rows, OUTPUTS]`: the forward pass's result.
    pub out: Vec<f32>,
    /// The three heads' weights packed as one `[OUTPUTS, H]` matrix.
    heads: Vec<f32>,
    d_heads: Vec<f32>,
    d_hidden: Vec<f32>,
    d_h1: Vec<f32>,
    /// Per market, the sum of its rows' trunk pre-activation gradients.
    d_market: Vec<f32>,
}

impl MlpScratch {
    fn ensure(&mut self, shape: &MlpShape, rows: usize) {
        let grow = |v: &mut Vec<f32>, n: usize| {
            if v.len() < n {
                v.resize(n, 0.0);
            }
        };
        let h = shape.hidden;
        grow(&mut self.h1, rows * h);
        grow(&mut self.trunk_in, rows * (h + shape.account));
        grow(&mut self.z, rows * h);
        grow(&mut self.out, rows * OUTPUTS);
        grow(&mut self.heads, OUTPUTS * h);
        grow(&mut self.d_heads, OUTPUTS * h);
        grow(&mut self.d_hidden, rows * h);
        grow(&mut self.d_h1, rows * h);
        self.rows = rows;
    }
}

/// Consecutive rows of a batch whose flattened windows sit `stride` values
/// apart from `start` on in the caller's buffer. A rollout stored time-major
/// holds one environment's steps `envs` rows apart, so a minibatch of
/// whole environments is read in place, one block each, never gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBlock {
    /// Index in the buffer of the block's first window.
    pub start: usize,
    /// Distance between consecutive windows, in values.
    pub stride: usize,
    /// Number of rows (windows) in the block.
    pub rows: usize,
}

impl WindowBlock {
    /// `rows` windows of `window_len` values one after another.
    pub fn contiguous(rows: usize, window_len: usize) -> Self {
        WindowBlock {
            start: 0,
            stride: window_len,
            rows,
        }
    }
}

/// The market of a row: (instrument id, timeframe id).
pub type RowMarket<'a> = &'a dyn Fn(usize) -> (usize, usize);

/// A batch's inputs other than the accounts: its windows, read from
/// `windows` block by block, and each row's market.
pub struct BatchRows<'a> {
    /// The buffer the blocks index into.
    pub windows: &'a [f32],
    /// The batch's rows, block after block, in row order.
    pub blocks: &'a [WindowBlock],
    /// Each batch row's (instrument id, timeframe id).
    pub market: RowMarket<'a>,
}

impl MlpLayout {
    /// The transposed tensors: (offset, rows, columns) in model order.
    fn transposed(&self) -> [(usize, usize, usize); 2] {
        let sh = &self.shape;
        [
            (self.encoder_w, sh.hidden, sh.window_len),
            (self.trunk_w, sh.hidden, sh.joined()),
        ]
    }

    /// Converts a flat vector (parameters, gradients or moments) from the
    /// model's order (candle's, Adam's) to the kernels' order.
    pub fn to_kernel_order(&self, flat: &mut [f32], scratch: &mut Vec<f32>) {
        for (at, rows, cols) in self.transposed() {
            transpose(&mut flat[at..at + rows * cols], rows, cols, scratch);
        }
    }

    /// The inverse of [`MlpLayout::to_kernel_order`].
    pub fn to_model_order(&self, flat: &mut [f32], scratch: &mut Vec<f32>) {
        for (at, rows, cols) in self.transposed() {
            transpose(&mut flat[at..at + rows * cols], cols, rows, scratch);
        }
    }

    /// A market's instrument then timeframe embedding values.
    fn embeddings<'t>(&self, theta: &'t [f32], (inst, tf): (usize, usize)) -> impl Iterator<Item = f32> + 't {
        let ie = self.instrument + inst * INSTRUMENT_EMBEDDING;
        let te = self.timeframe + tf * TIMEFRAME_EMBEDDING;
        theta[ie..ie + INSTRUMENT_EMBEDDING]
            .iter()
            .chain(&theta[te..te + TIMEFRAME_EMBEDDING])
            .copied()
    }

    /// Forward pass over a batch (`theta` in kernel order), with
    /// `accounts [rows, account]`. Results in `scratch.out`. Ids outside
    /// the embeddings are the caller's error and panic (the agent checks
    /// its markets before acting).
    pub fn forward(&self, theta: &[f32], batch: &BatchRows<'_>, accounts: &[f32], s: &mut MlpScratch) {
        let BatchRows {
            windows,
            blocks,
            market,
        } = *batch;
        let sh = &self.shape;
        let (h, j, w, a) = (sh.hidden, sh.joined(), sh.window_len, sh.account);
        let rows = blocks.iter().map(|b| b.rows).sum();
        s.ensure(sh, rows);
        let w1t = &theta[self.encoder_w..self.encoder_w + h * w];
        let mut row = 0;
        for b in blocks {
            let out = &mut s.h1[row * h..(row + b.rows) * h];
            matmul(
                out,
                false,
                (b.rows, h, w),
                (&windows[b.start..], b.stride, 1),
                (w1t, h, 1),
            );
            row += b.rows;
        }
        bias_tanh(&mut s.h1[..rows * h], &theta[self.encoder_b..self.encoder_b + h]);
        // The trunk: W2 [h1, account, embeddings]. The embeddings' share is
        // the same for every row of a market, so it is computed once per
        // market (with the bias) and added, rather than multiplied per row.
        let p = h + a;
        s.markets.clear();
        s.row_market.clear();
        for r in 0..rows {
            let m = market(r);
            let k = match s.markets.iter().position(|x| *x == m) {
                Some(k) => k,
                None => {
                    s.markets.push(m);
                    s.markets.len() - 1
                }
            };
            s.row_market.push(k);
            let row = &mut s.trunk_in[r * p..(r + 1) * p];
            row[..h].copy_from_slice(&s.h1[r * h..(r + 1) * h]);
            row[h..].copy_from_slice(&accounts[r * a..(r + 1) * a]);
        }
        let w2t = &theta[self.trunk_w..self.trunk_w + h * j];
        s.market_bias.clear();
        for k in 0..s.markets.len() {
            s.market_bias.extend_from_slice(&theta[self.trunk_b..self.trunk_b + h]);
            let bias = &mut s.market_bias[k * h..(k + 1) * h];
            for (c, e) in self.embeddings(theta, s.markets[k]).enumerate() {
                axpy(e, &w2t[(p + c) * h..(p + c + 1) * h], bias);
            }
        }
        matmul(
            &mut s.z[..rows * h],
            false,
            (rows, h, p),
            (&s.trunk_in, p, 1),
            (&w2t[..p * h], h, 1),
        );
        wide(|| {
            for (r, z) in s.z[..rows * h].chunks_exact_mut(h).enumerate() {
                let k = s.row_market[r];
                for (v, b) in z.iter_mut().zip(&s.market_bias[k * h..(k + 1) * h]) {
                    *v = fast_tanh(*v + b);
                }
            }
        });
        for c in 0..OUTPUTS {
            s.heads[c * h..(c + 1) * h].copy_from_slice(&theta[self.head_w[c]..self.head_w[c] + h]);
        }
        let out = &mut s.out[..rows * OUTPUTS];
        matmul(out, false, (rows, OUTPUTS, h), (&s.z, h, 1), (&s.heads, 1, h));
        for row in out.chunks_exact_mut(OUTPUTS) {
            for (c, v) in row.iter_mut().enumerate() {
                *v += theta[self.head_b[c]];
            }
        }
    }

    /// Adds to `grad` (laid out like `theta`) the gradient of a loss whose
    /// derivative with respect to the outputs of the last [`forward`] is
    /// `d_out [rows, OUTPUTS]`. `batch` must be the forward pass's.
    ///
    /// [`forward`]: MlpLayout::forward
    pub fn backward(&self, theta: &[f32], batch: &BatchRows<'_>, d_out: &[f32], s: &mut MlpScratch, grad: &mut [f32]) {
        let BatchRows { windows, blocks, .. } = *batch;
        let sh = &self.shape;
        let (h, j, w, a) = (sh.hidden, sh.joined(), sh.window_len, sh.account);
        let rows = s.rows;
        // Heads: d z = d_out W_heads, d W_heads = d_out^T z, d b = sums of d_out.
        let d_out = &d_out[..rows * OUTPUTS];
        let z = &s.z[..rows * h];
        matmul(
            &mut s.d_heads[..OUTPUTS * h],
            false,
            (OUTPUTS, h, rows),
            (d_out, 1, OUTPUTS),
            (z, h, 1),
        );
        for c in 0..OUTPUTS {
            axpy(
                1.0,
                &s.d_heads[c * h..(c + 1) * h],
                &mut grad[self.head_w[c]..self.head_w[c] + h],
            );
            grad[self.head_b[c]] += d_out.iter().skip(c).step_by(OUTPUTS).sum::<f32>();
        }
        let dz = &mut s.d_hidden[..rows * h];
        matmul(
            dz,
            false,
            (rows, h, OUTPUTS),
            (d_out, OUTPUTS, 1),
            (&s.heads[..OUTPUTS * h], h, 1),
        );
        // Trunk, in kernel order (W2^T [J, H]): through tanh; the per-row
        // part d W2^T[..p] = [h1, account]^T dpre and d h1 = dpre W2[..H];
        // the embeddings' part from each market's summed dpre.
        tanh_backward(dz, &s.z[..rows * h]);
        column_sums(dz, h, &mut grad[self.trunk_b..self.trunk_b + h]);
        let p = h + a;
        let w2t = &theta[self.trunk_w..self.trunk_w + h * j];
        matmul(
            &mut grad[self.trunk_w..self.trunk_w + p * h],
            true,
            (p, h, rows),
            (&s.trunk_in, 1, p),
            (dz, h, 1),
        );
        let d_h1 = &mut s.d_h1[..rows * h];
        matmul(d_h1, false, (rows, h, h), (dz, h, 1), (&w2t[..h * h], 1, h));
        s.d_market.clear();
        s.d_market.resize(s.markets.len() * h, 0.0);
        for (r, d) in dz.chunks_exact(h).enumerate() {
            let k = s.row_market[r];
            axpy(1.0, d, &mut s.d_market[k * h..(k + 1) * h]);
        }
        for (k, &(inst, tf)) in s.markets.iter().enumerate() {
            let d = &s.d_market[k * h..(k + 1) * h];
            let ie = self.instrument + inst * INSTRUMENT_EMBEDDING;
            let te = self.timeframe + tf * TIMEFRAME_EMBEDDING;
            let slots = (ie..ie + INSTRUMENT_EMBEDDING).chain(te..te + TIMEFRAME_EMBEDDING);
            for (c, slot) in slots.enumerate() {
                let row = (p + c) * h;
                axpy(theta[slot], d, &mut grad[self.trunk_w + row..self.trunk_w + row + h]);
                grad[slot] += dot(&w2t[row..row + h], d);
            }
        }
        // Encoder: through tanh, then d W1 = dpre^T windows. The windows'
        // own gradient is not needed.
        let d1 = &mut s.d_h1[..rows * h];
        tanh_backward(d1, &s.h1[..rows * h]);
        column_sums(d1, h, &mut grad[self.encoder_b..self.encoder_b + h]);
        let mut row = 0;
        for b in blocks {
            matmul(
                &mut grad[self.encoder_w..self.encoder_w + h * w],
                true,
                (w, h, b.rows),
                (&windows[b.start..], 1, b.stride),
                (&d1[row * h..(row + b.rows) * h], h, 1),
            );
            row += b.rows;
        }
    }
}

/// Row-major `dst [m, n] (+)= lhs rhs` on this thread: at these sizes
/// gemm's thread pool costs more than it saves (measured on 2 cores).
fn matmul(
    dst: &mut [f32],
    accumulate: bool,
    dims: (usize, usize, usize),
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    matmul_with(Parallelism::None, dst, accumulate, dims, lhs, rhs);
}

/// Transposes a row-major `[rows, cols]` matrix in place (through `scratch`).
fn transpose(m: &mut [f32], rows: usize, cols: usize, scratch: &mut Vec<f32>) {
    const TILE: usize = 16; // tiles keep both sides' cache lines in use
    scratch.clear();
    scratch.extend_from_slice(m);
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    m[c * rows + r] = scratch[r * cols + c];
                }
            }
        }
    }
}

fn bias_tanh(x: &mut [f32], bias: &[f32]) {
    wide(|| {
        for row in x.chunks_exact_mut(bias.len()) {
            for (v, b) in row.iter_mut().zip(bias) {
                *v = fast_tanh(*v + b);
            }
        }
    })
}

/// `d *= 1 - y^2` (tanh's derivative from its output).
fn tanh_backward(d: &mut [f32], y: &[f32]) {
    wide(|| {
        for (g, y) in d.iter_mut().zip(y) {
            *g *= 1.0 - y * y;
        }
    })
}

fn column_sums(x: &[f32], width: usize, out: &mut [f32]) {
    wide(|| {
        for row in x.chunks_exact(width) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
    })
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Params;
    use crate::policy::{EncoderKind, PolicyConfig, PolicyNet};
    use candle_core::{Device, Tensor};

    #[test]
    fn forward_and_gradient_match_the_candle_policy() {
        let (b, window, features, hidden) = (7, 4, 3, 16);
        let cfg = PolicyConfig {
            encoder: EncoderKind::Mlp,
            features,
            window,
            account: 3,
            hidden,
            heads: 1,
            layers: 1,
            instruments: 3,
            timeframes: 2,
        };
        let d = Device::Cpu;
        let mut p = Params::new(11, d.clone());
        let net = PolicyNet::new(&mut p, cfg).unwrap();
        let windows = Tensor::randn(0f32, 1.0, (b, window, features), &d).unwrap();
        let accounts = Tensor::randn(0f32, 1.0, (b, 3), &d).unwrap();
        let ids: Vec<(usize, usize)> = (0..b).map(|r| (r % 3, r % 2)).collect();
        let inst = Tensor::new(ids.iter().map(|x| x.0 as u32).collect::<Vec<_>>(), &d).unwrap();
        let tf = Tensor::new(ids.iter().map(|x| x.1 as u32).collect::<Vec<_>>(), &d).unwrap();
        let out = net.forward(&windows, &accounts, &inst, &tf).unwrap();
        let reference = Tensor::cat(
            &[
                &out.logits,
                &out.raw_alpha.unsqueeze(1).unwrap(),
                &out.raw_beta.unsqueeze(1).unwrap(),
                &out.value.unsqueeze(1).unwrap(),
            ],
            1,
        )
        .unwrap();
        // Any loss: a fixed random weighting of the outputs.
        let weights = Tensor::randn(0f32, 1.0, (b, OUTPUTS), &d).unwrap();
        let grads = (&reference * &weights).unwrap().sum_all().unwrap().backward().unwrap();

        let named = p.named_vars();
        let sizes: Vec<(String, usize)> = named
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().elem_count()))
            .collect();
        let shape = MlpShape {
            window_len: window * features,
            account: 3,
            hidden,
            instruments: 3,
            timeframes: 2,
        };
        let layout = MlpLayout::new(shape, &sizes).unwrap();
        let mut theta: Vec<f32> = p.flat().unwrap().iter().map(|x| *x as f32).collect();
        let mut scratch = Vec::new();
        layout.to_kernel_order(&mut theta, &mut scratch);
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (w, a) = (flat(&windows), flat(&accounts));
        let market = |r: usize| ids[r];
        let mut s = MlpScratch::default();
        let blocks = [WindowBlock::contiguous(b, window * features)];
        let batch = BatchRows {
            windows: &w,
            blocks: &blocks,
            market: &market,
        };
        layout.forward(&theta, &batch, &a, &mut s);
        for (x, y) in s.out[..b * OUTPUTS].iter().zip(flat(&reference)) {
            assert!((x - y).abs() < 1e-5, "output {x} vs {y}");
        }
        let mut grad = vec![0f32; layout.total];
        layout.backward(&theta, &batch, &flat(&weights), &mut s, &mut grad);
        layout.to_model_order(&mut grad, &mut scratch);
        // The round trip of the orders is the identity.
        let mut back = theta.clone();
        layout.to_model_order(&mut back, &mut scratch);
        layout.to_kernel_order(&mut back, &mut scratch);
        assert_eq!(back, theta);
        let mut at = 0;
        for (name, var) in &named {
            let n = var.as_tensor().elem_count();
            let want = flat(grads.get(var.as_tensor()).unwrap());
            for (x, y) in grad[at..at + n].iter().zip(&want) {
                assert!((x - y).abs() < 1e-4 * y.abs().max(1.0), "{name}: {x} vs {y}");
            }
            at += n;
        }
        // A wrong layout is refused with the tensor named.
        let mut wrong = sizes.clone();
        wrong[0].1 += 1;
        assert!(MlpLayout::new(shape, &wrong).is_err());
    }
}
