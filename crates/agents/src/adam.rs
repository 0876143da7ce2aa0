//! Adam with global gradient-norm clipping, written out so that its state
//! (moments and step count) can go into a checkpoint and training resumes
//! exactly where it stopped.

use std::collections::BTreeMap;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

pub struct Adam {
    names: Vec<String>,
    vars: Vec<Var>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    pub step: usize,
    pub beta1: f64,
    pub beta2: f64,
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
                *slot = t.clone();
            }
        }
        self.step = step;
        Ok(())
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
}
