//! The HRM's forward pass on plain arrays, for acting: no graph, no
//! per-operation tensors. At batch 1 a candle segment is some 400 small
//! operations whose bookkeeping, not arithmetic, sets the latency; here a
//! segment is a few matrix multiplies into buffers reused across calls.
//!
//! A snapshot of the weights is taken once ([`HrmInference::from_net`]) and
//! must be retaken after they change. The tests check it against the candle
//! path, which stays the one that trains.

use candle_core::{Result, Tensor};

use super::block::{swiglu_width, RMS_EPS};
use super::{HrmNet, HrmNetConfig};
use crate::kernels::{fast_sigmoid, matmul};

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// A dense layer's weight `[out, in]` and optional bias.
struct Dense {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    input: usize,
    output: usize,
}

impl Dense {
    fn new(w: &Tensor, b: Option<&Tensor>) -> Result<Self> {
        let (output, input) = w.dims2()?;
        Ok(Dense {
            w: values(w)?,
            b: b.map(values).transpose()?,
            input,
            output,
        })
    }

    /// `dst[rows, out] = x[rows, in] W^T (+ b)`.
    fn apply(&self, dst: &mut [f32], x: &[f32], rows: usize) {
        let dst = &mut dst[..rows * self.output];
        matmul(
            dst,
            false,
            (rows, self.output, self.input),
            (x, self.input, 1),
            (&self.w, 1, self.input),
        );
        if let Some(b) = &self.b {
            for row in dst.chunks_exact_mut(self.output) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
    }
}

struct Block {
    qkv: Dense,
    out: Dense,
    gate_up: Dense,
    down: Dense,
}

/// Buffers reused across calls, grown to the largest batch seen.
#[derive(Default)]
struct Scratch {
    inject: Vec<f32>,
    qkv: Vec<f32>,
    mixed: Vec<f32>,
    proj: Vec<f32>,
    gate_up: Vec<f32>,
    act: Vec<f32>,
    scores: Vec<f32>,
    rotated: Vec<f32>,
}

/// One segment's head outputs, `[n]` each (logits `[n, 5]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlainOutput {
    /// Action logits before masking, row-major `[n, 5]`.
    pub logits: Vec<f32>,
    /// Raw first Beta concentration (see [`crate::heads::Beta::from_raw`]).
    pub raw_alpha: Vec<f32>,
    /// Raw second Beta concentration.
    pub raw_beta: Vec<f32>,
    /// The critic's value estimate.
    pub value: Vec<f32>,
    /// Q-halting logit for stopping after this segment.
    pub q_halt: Vec<f32>,
    /// Q-halting logit for running another segment.
    pub q_continue: Vec<f32>,
}

/// A copy of an [`HrmNet`]'s weights as flat arrays, with the scratch
/// buffers its forward pass reuses; the same outputs as
/// [`HrmNet::segment`], for acting only (no gradients).
pub struct HrmInference {
    cfg: HrmNetConfig,
    ff: usize,
    bars: Dense,
    context: Dense,
    instrument_embedding: Vec<f32>,
    timeframe_embedding: Vec<f32>,
    h_blocks: Vec<Block>,
    l_blocks: Vec<Block>,
    cos: Vec<f32>,
    sin: Vec<f32>,
    z_h_init: Vec<f32>,
    z_l_init: Vec<f32>,
    /// The four heads stacked: policy (5), quantity (2), value (1), Q (2).
    heads: Dense,
    scratch: Scratch,
}

impl HrmInference {
    /// Copies the network's current weights.
    pub fn from_net(net: &HrmNet) -> Result<Self> {
        let block = |b: &super::block::Block| -> Result<Block> {
            Ok(Block {
                qkv: Dense::new(&b.qkv.weight, None)?,
                out: Dense::new(&b.out.weight, None)?,
                gate_up: Dense::new(&b.gate_up.weight, None)?,
                down: Dense::new(&b.down.weight, None)?,
            })
        };
        let (pw, pb) = net.policy.parts();
        let (qw, qb) = net.quantity.parts();
        let (vw, vb) = net.value.parts();
        let (hw, hb) = net.q_head.parts();
        let heads_w = Tensor::cat(&[pw, qw, vw, hw], 0)?;
        let heads_b = Tensor::cat(&[pb, qb, vb, hb], 0)?;
        let (cw, cb) = net.context.parts();
        Ok(HrmInference {
            cfg: net.cfg.clone(),
            ff: swiglu_width(net.cfg.d_model),
            bars: Dense::new(&net.bar_projection.weight, None)?,
            context: Dense::new(cw, Some(cb))?,
            instrument_embedding: values(&net.instrument_embedding)?,
            timeframe_embedding: values(&net.timeframe_embedding)?,
            h_blocks: net.h_module.blocks.iter().map(block).collect::<Result<_>>()?,
            l_blocks: net.l_module.blocks.iter().map(block).collect::<Result<_>>()?,
            cos: values(&net.rotary.cos)?,
            sin: values(&net.rotary.sin)?,
            z_h_init: values(&net.z_h_init)?,
            z_l_init: values(&net.z_l_init)?,
            heads: Dense::new(&heads_w, Some(&heads_b))?,
            scratch: Scratch::default(),
        })
    }

    fn tokens(&self) -> usize {
        self.cfg.window + 1
    }

    /// `x~ [n, 1 + W, d]` from `windows [n, W, F]`, `accounts [n, A]` and ids.
    pub fn embed(&self, windows: &[f32], accounts: &[f32], instruments: &[u32], timeframes: &[u32]) -> Vec<f32> {
        let c = &self.cfg;
        let (n, t, d) = (instruments.len(), self.tokens(), c.d_model);
        let mut x = vec![0f32; n * t * d];
        let mut bars = vec![0f32; c.window * d];
        let ctx_in = c.instrument_embedding + c.timeframe_embedding + c.account;
        let mut joined = vec![0f32; ctx_in];
        for s in 0..n {
            let (ie, te) = (c.instrument_embedding, c.timeframe_embedding);
            let i = instruments[s] as usize;
            let k = timeframes[s] as usize;
            joined[..ie].copy_from_slice(&self.instrument_embedding[i * ie..(i + 1) * ie]);
            joined[ie..ie + te].copy_from_slice(&self.timeframe_embedding[k * te..(k + 1) * te]);
            joined[ie + te..].copy_from_slice(&accounts[s * c.account..(s + 1) * c.account]);
            let sample = &mut x[s * t * d..(s + 1) * t * d];
            self.context.apply(&mut sample[..d], &joined, 1);
            let w = &windows[s * c.window * c.features..(s + 1) * c.window * c.features];
            self.bars.apply(&mut bars, w, c.window);
            sample[d..].copy_from_slice(&bars);
        }
        x
    }

    /// The fixed initial states for `n` samples.
    pub fn initial(&self, n: usize) -> (Vec<f32>, Vec<f32>) {
        let t = self.tokens();
        (self.z_h_init.repeat(n * t), self.z_l_init.repeat(n * t))
    }

    /// One segment from `(z_h, z_l)` (updated in place) and the heads.
    pub fn segment(&mut self, z_h: &mut [f32], z_l: &mut [f32], x: &[f32], n: usize) -> PlainOutput {
        let rows = n * self.tokens();
        let d = self.cfg.d_model;
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut inject = std::mem::take(&mut scratch.inject);
        grow(&mut inject, rows * d);
        let inject_len = rows * d;
        for i in 1..=self.cfg.h_cycles * self.cfg.l_cycles {
            let inj = &mut inject[..inject_len];
            inj.iter_mut().zip(z_h.iter().zip(x)).for_each(|(v, (h, x))| *v = h + x);
            self.module(&self.l_blocks, z_l, inj, n, &mut scratch);
            if i % self.cfg.l_cycles == 0 {
                inj.copy_from_slice(z_l);
                self.module(&self.h_blocks, z_h, inj, n, &mut scratch);
            }
        }
        scratch.inject = inject;
        self.scratch = scratch;
        self.read_heads(z_h, n)
    }

    fn read_heads(&self, z_h: &[f32], n: usize) -> PlainOutput {
        let (t, d) = (self.tokens(), self.cfg.d_model);
        let mut tokens = vec![0f32; n * d];
        for s in 0..n {
            tokens[s * d..(s + 1) * d].copy_from_slice(&z_h[s * t * d..s * t * d + d]);
        }
        let mut all = vec![0f32; n * 10];
        self.heads.apply(&mut all, &tokens, n);
        let mut out = PlainOutput::default();
        for row in all.chunks_exact(10) {
            out.logits.extend_from_slice(&row[..5]);
            out.raw_alpha.push(row[5]);
            out.raw_beta.push(row[6]);
            out.value.push(row[7]);
            out.q_halt.push(row[8]);
            out.q_continue.push(row[9]);
        }
        out
    }

    /// `z = blocks(z + injection)`, in place.
    fn module(&self, blocks: &[Block], z: &mut [f32], injection: &[f32], n: usize, s: &mut Scratch) {
        z.iter_mut().zip(injection).for_each(|(z, i)| *z += i);
        for b in blocks {
            self.block(b, z, n, s);
        }
    }

    fn block(&self, b: &Block, h: &mut [f32], n: usize, s: &mut Scratch) {
        let (t, d, heads) = (self.tokens(), self.cfg.d_model, self.cfg.heads);
        let (dh, rows, ff) = (d / heads, n * t, self.ff);
        grow(&mut s.qkv, rows * 3 * d);
        grow(&mut s.mixed, rows * d);
        grow(&mut s.proj, rows * d);
        grow(&mut s.gate_up, rows * 2 * ff);
        grow(&mut s.act, rows * ff);
        grow(&mut s.scores, t);
        grow(&mut s.rotated, 2 * t * dh);
        b.qkv.apply(&mut s.qkv, h, rows);
        let scale = 1.0 / (dh as f32).sqrt();
        let half = dh / 2;
        for sample in 0..n {
            let base = sample * t;
            for head in 0..heads {
                // Rotary positions on this head's queries and keys.
                let (q_rot, k_rot) = s.rotated.split_at_mut(t * dh);
                for tok in 0..t {
                    let row = &s.qkv[(base + tok) * 3 * d..(base + tok + 1) * 3 * d];
                    let (cos, sin) = (&self.cos[tok * dh..(tok + 1) * dh], &self.sin[tok * dh..(tok + 1) * dh]);
                    for (dst, off) in [(&mut *q_rot, head * dh), (&mut *k_rot, d + head * dh)] {
                        let v = &row[off..off + dh];
                        let out = &mut dst[tok * dh..(tok + 1) * dh];
                        for j in 0..dh {
                            let rot = if j < half { -v[j + half] } else { v[j - half] };
                            out[j] = v[j] * cos[j] + rot * sin[j];
                        }
                    }
                }
                for tq in 0..t {
                    let q = &q_rot[tq * dh..(tq + 1) * dh];
                    let mut max = f32::NEG_INFINITY;
                    for tk in 0..t {
                        let k = &k_rot[tk * dh..(tk + 1) * dh];
                        let score = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                        s.scores[tk] = score;
                        max = max.max(score);
                    }
                    let mut total = 0.0;
                    for v in &mut s.scores[..t] {
                        *v = (*v - max).exp();
                        total += *v;
                    }
                    let out = &mut s.mixed[(base + tq) * d + head * dh..(base + tq) * d + (head + 1) * dh];
                    out.fill(0.0);
                    for tk in 0..t {
                        let w = s.scores[tk] / total;
                        let v = &s.qkv
                            [(base + tk) * 3 * d + 2 * d + head * dh..(base + tk) * 3 * d + 2 * d + (head + 1) * dh];
                        out.iter_mut().zip(v).for_each(|(o, v)| *o += w * v);
                    }
                }
            }
        }
        b.out.apply(&mut s.proj, &s.mixed, rows);
        add_and_normalise(h, &s.proj[..rows * d], d);
        b.gate_up.apply(&mut s.gate_up, h, rows);
        for r in 0..rows {
            let gu = &s.gate_up[r * 2 * ff..(r + 1) * 2 * ff];
            let act = &mut s.act[r * ff..(r + 1) * ff];
            for j in 0..ff {
                let g = gu[j];
                act[j] = g * fast_sigmoid(g) * gu[ff + j];
            }
        }
        b.down.apply(&mut s.proj, &s.act, rows);
        add_and_normalise(h, &s.proj[..rows * d], d);
    }
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// `h = rms_norm(h + y)` row by row (no scale, as the blocks use).
fn add_and_normalise(h: &mut [f32], y: &[f32], d: usize) {
    for (row, add) in h.chunks_exact_mut(d).zip(y.chunks_exact(d)) {
        let mut ms = 0.0f32;
        for (v, a) in row.iter_mut().zip(add) {
            *v += a;
            ms += *v * *v;
        }
        let inv = 1.0 / (ms / d as f32 + RMS_EPS as f32).sqrt();
        row.iter_mut().for_each(|v| *v *= inv);
    }
}
