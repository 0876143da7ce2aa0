//! Adam with global gradient-norm clipping, written out so that its state
//! (moments and step count) can go into a checkpoint and training resumes
//! exactly where it stopped.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, InplaceOp1, Layout, Result, Storage, Tensor, Var};
use tradelab_nn::simd::wide;

/// Adam over a fixed, named list of variables, with first and second
/// moments per variable and PyTorch's bias-corrected update.
pub struct Adam {
    names: Vec<String>,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Steps taken so far (the `t` of the bias corrections); saved in a
    /// checkpoint and given back to [`Adam::restore`].
    pub step: usize,
    /// Decay of the first moment (0.9 by default).
    pub beta1: f64,
    /// Decay of the second moment (0.999 by default).
    pub beta2: f64,
    /// Added to the bias-corrected `sqrt(v)` in the denominator.
    pub eps: f64,
    /// Decoupled weight decay (AdamW): `theta *= 1 - lr * weight_decay`
    /// before each step. 0 is plain Adam.
    pub weight_decay: f64,
}

impl Adam {
    /// Zero moments for every variable, in the given (name) order.
    pub fn new(named: Vec<(String, Var)>, eps: f64) -> Result<Self> {
        let mut a = Adam {
            names: Vec::new(),
            vars: Vec::new(),
            m: Vec::new(),
            v: Vec::new(),
            step: 0,
            beta1: 0.9,
            beta2: 0.999,
            eps,
            weight_decay: 0.0,
        };
        for (name, var) in named {
            a.m.push(var.as_tensor().zeros_like()?);
            a.v.push(var.as_tensor().zeros_like()?);
            a.names.push(name);
            a.vars.push(var);
        }
        Ok(a)
    }

    /// Clips the gradients' global L2 norm to `max_norm` and takes one step.
    /// Returns the norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64, max_norm: f64) -> Result<f64> {
        let mut sq = 0f64;
        for var in &self.vars {
            if let Some(g) = grads.get(var) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sq.sqrt();
        let scale = if norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - self.beta1.powi(t);
        let bc2 = 1.0 - self.beta2.powi(t);
        for (i, var) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var) else { continue };
            let g = (g * scale)?;
            self.m[i] = ((&self.m[i] * self.beta1)? + (&g * (1.0 - self.beta1))?)?;
            self.v[i] = ((&self.v[i] * self.beta2)? + (g.sqr()? * (1.0 - self.beta2))?)?;
            // PyTorch's form: lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps).
            let denom = ((self.v[i].sqrt()? / bc2.sqrt())? + self.eps)?;
            let update = ((&self.m[i] / denom)? * (lr / bc1))?;
            let decayed = if self.weight_decay > 0.0 {
                (var.as_tensor() * (1.0 - lr * self.weight_decay))?
            } else {
                var.as_tensor().clone()
            };
            var.set(&(decayed - update)?)?;
        }
        Ok(norm)
    }

    /// Each parameter's name and size, in the optimiser's order: the layout
    /// of the flat vectors below.
    pub(crate) fn flat_layout(&self) -> Vec<(String, usize)> {
        self.names
            .iter()
            .zip(&self.vars)
            .map(|(n, v)| (n.clone(), v.as_tensor().elem_count()))
            .collect()
    }

    /// Copies the parameters and both moments into flat vectors laid out
    /// as [`Adam::flat_layout`] (for [`Adam::step_flat`]). The vectors'
    /// memory is reused from one call to the next.
    pub(crate) fn export_flat(&self, theta: &mut Vec<f32>, m: &mut Vec<f32>, v: &mut Vec<f32>) -> Result<()> {
        for (dst, tensors) in [(theta, None), (m, Some(&self.m)), (v, Some(&self.v))] {
            dst.clear();
            for (i, var) in self.vars.iter().enumerate() {
                append_values(tensors.map_or(var.as_tensor(), |ts| &ts[i]), dst)?;
            }
        }
        Ok(())
    }

    /// Writes flat vectors from [`Adam::export_flat`] back into the
    /// parameters and moments, in place.
    pub(crate) fn import_flat(&mut self, theta: &[f32], m: &[f32], v: &[f32]) -> Result<()> {
        let mut at = 0;
        for (i, var) in self.vars.iter().enumerate() {
            let n = var.as_tensor().elem_count();
            var.as_tensor().inplace_op1(&Overwrite(&theta[at..at + n]))?;
            self.m[i].inplace_op1(&Overwrite(&m[at..at + n]))?;
            self.v[i].inplace_op1(&Overwrite(&v[at..at + n]))?;
            at += n;
        }
        Ok(())
    }

    /// [`Adam::step`] on flat vectors (every parameter has a gradient):
    /// one pass, no tensors. The step count is this optimiser's.
    pub(crate) fn step_flat(
        &mut self,
        theta: &mut [f32],
        grad: &[f32],
        m: &mut [f32],
        v: &mut [f32],
        lr: f64,
        max_norm: f64,
    ) -> f64 {
        // The squared norm in 16 f32 lanes per block of 1024 (vectorised),
        // the blocks summed in f64.
        let norm = wide(|| {
            grad.chunks(1024)
                .map(|block| {
                    let mut lanes = [0f32; 16];
                    let mut chunks = block.chunks_exact(16);
                    for c in &mut chunks {
                        for (l, g) in lanes.iter_mut().zip(c) {
                            *l += g * g;
                        }
                    }
                    let tail: f32 = chunks.remainder().iter().map(|g| g * g).sum();
                    lanes.iter().map(|l| *l as f64).sum::<f64>() + tail as f64
                })
                .sum::<f64>()
        })
        .sqrt();
        let scale = if norm > max_norm { max_norm / (norm + 1e-6) } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let step_size = (lr / (1.0 - self.beta1.powi(t))) as f32;
        let inv_sqrt_bc2 = (1.0 / (1.0 - self.beta2.powi(t)).sqrt()) as f32;
        let (eps, scale, decay) = (self.eps as f32, scale as f32, (1.0 - lr * self.weight_decay) as f32);
        wide(|| {
            for (((theta, g), m), v) in theta.iter_mut().zip(grad).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g * scale;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *theta = *theta * decay - step_size * *m / (v.sqrt() * inv_sqrt_bc2 + eps);
            }
        });
        norm
    }

    /// Moments by name (`adam.m.<param>`, `adam.v.<param>`), for a checkpoint.
    pub fn state(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for (i, name) in self.names.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[i].clone());
            out.insert(format!("adam.v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`Adam::state`]; every one must be present
    /// with the parameter's shape.
    pub fn restore(&mut self, state: &BTreeMap<String, Tensor>, step: usize) -> std::result::Result<(), String> {
        for (i, name) in self.names.iter().enumerate() {
            for (slot, key) in [
                (&mut self.m[i], format!("adam.m.{name}")),
                (&mut self.v[i], format!("adam.v.{name}")),
            ] {
                let t = state
                    .get(&key)
                    .ok_or_else(|| format!("optimiser state lacks `{key}`"))?;
                if t.dims() != slot.dims() {
                    return Err(format!("`{key}` has shape {:?}, expected {:?}", t.dims(), slot.dims()));
                }
                // A copy: the moments are later overwritten in place.
                *slot = t.copy().map_err(|e| e.to_string())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Appends a tensor's values (contiguous f32 CPU storage read directly).
fn append_values(t: &Tensor, dst: &mut Vec<f32>) -> Result<()> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(CpuStorage::F32(values)), Some((start, end))) = (&*storage, layout.contiguous_offsets()) {
            dst.extend_from_slice(&values[start..end]);
            return Ok(());
        }
    }
    dst.extend(t.flatten_all()?.to_vec1::<f32>()?);
    Ok(())
}

/// Overwrites a contiguous f32 CPU tensor's values in place.
struct Overwrite<'a>(&'a [f32]);

impl InplaceOp1 for Overwrite<'_> {
    fn name(&self) -> &'static str {
        "overwrite"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        match (storage, layout.contiguous_offsets()) {
            (CpuStorage::F32(values), Some((start, end))) if end - start == self.0.len() => {
                values[start..end].copy_from_slice(self.0);
                Ok(())
            }
            _ => candle_core::bail!("overwrite needs a contiguous f32 tensor of {} values", self.0.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_the_closed_form_first_steps_and_clips_the_global_norm() {
        let x = Var::new(&[1.0f32, -2.0], &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![("x".into(), x.clone())], 1e-5).unwrap();
        // loss = sum(x^2): gradient 2x = [2, -4], norm sqrt(20) > 1, so it is
        // scaled to unit norm; Adam's first step moves each coordinate by
        // lr * sign(g) regardless of scale.
        let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let norm = adam.step(&grads, 0.1, 1.0).unwrap();
        assert!((norm - 20f64.sqrt()).abs() < 1e-5);
        let v = x.as_tensor().to_vec1::<f32>().unwrap();
        assert!((v[0] - 0.9).abs() < 1e-4 && (v[1] + 1.9).abs() < 1e-4, "{v:?}");
        // Moments after one step: m = 0.1 g_clipped, v = 0.001 g_clipped^2.
        let g0 = 2.0 / 20f32.sqrt();
        let m = adam.state()["adam.m.x"].to_vec1::<f32>().unwrap();
        assert!((m[0] - 0.1 * g0).abs() < 1e-5, "{m:?}");
        let saved = adam.state();
        let mut other = Adam::new(vec![("x".into(), Var::new(&[0f32, 0.0], &Device::Cpu).unwrap())], 1e-5).unwrap();
        other.restore(&saved, adam.step).unwrap();
        assert_eq!(other.step, 1);
        assert!(other.restore(&BTreeMap::new(), 1).unwrap_err().contains("adam.m.x"));
    }

    #[test]
    fn decoupled_weight_decay_shrinks_before_the_step() {
        let x = Var::new(&[2.0f32], &Device::Cpu).unwrap();
        let mut adam = Adam::new(vec![("x".into(), x.clone())], 1e-8).unwrap();
        adam.weight_decay = 0.5;
        let grads = x.as_tensor().sum_all().unwrap().backward().unwrap();
        adam.step(&grads, 0.1, 100.0).unwrap();
        // 2 * (1 - 0.1 * 0.5) - 0.1 * sign(1) = 1.8.
        let v = x.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((v - 1.8).abs() < 1e-5, "{v}");
    }

    #[test]
    fn the_flat_step_matches_the_tensor_step() {
        let d = Device::Cpu;
        let make = || {
            let a = Var::new(&[0.5f32, -1.5, 2.0], &d).unwrap();
            let b = Var::new(&[[0.1f32, 0.2], [-0.3, 0.4]], &d).unwrap();
            (a, b)
        };
        let (a1, b1) = make();
        let (a2, b2) = make();
        let mut tensor = Adam::new(vec![("a".into(), a1.clone()), ("b".into(), b1.clone())], 1e-5).unwrap();
        let mut flat = Adam::new(vec![("a".into(), a2.clone()), ("b".into(), b2.clone())], 1e-5).unwrap();
        tensor.weight_decay = 0.01;
        flat.weight_decay = 0.01;
        assert_eq!(flat.flat_layout(), vec![("a".to_string(), 3), ("b".to_string(), 4)]);
        for round in 0..3 {
            // loss = sum(a^3) + sum(b^2): gradients 3a^2 and 2b.
            let loss = (a1.as_tensor().powf(3.0).unwrap().sum_all().unwrap()
                + b1.as_tensor().sqr().unwrap().sum_all().unwrap())
            .unwrap();
            let n1 = tensor.step(&loss.backward().unwrap(), 0.05, 2.0).unwrap();
            let (mut theta, mut m, mut v) = (Vec::new(), Vec::new(), Vec::new());
            flat.export_flat(&mut theta, &mut m, &mut v).unwrap();
            let grad: Vec<f32> = theta[..3]
                .iter()
                .map(|x| 3.0 * x * x)
                .chain(theta[3..].iter().map(|x| 2.0 * x))
                .collect();
            let n2 = flat.step_flat(&mut theta, &grad, &mut m, &mut v, 0.05, 2.0);
            flat.import_flat(&theta, &m, &v).unwrap();
            assert!((n1 - n2).abs() < 1e-5, "round {round}: norm {n1} vs {n2}");
        }
        let all = |a: &Adam| {
            let mut x = Vec::new();
            for t in a.state().values().chain(a.vars.iter().map(|v| v.as_tensor())) {
                x.extend(t.flatten_all().unwrap().to_vec1::<f32>().unwrap());
            }
            x
        };
        for (x, y) in all(&tensor).iter().zip(all(&flat)) {
            assert!((x - y).abs() < 1e-5 * y.abs().max(1.0), "{x} vs {y}");
        }
        assert_eq!(tensor.step, flat.step);
    }
}
