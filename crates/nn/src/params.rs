//! Named parameters with seeded initialisation.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Every trainable tensor of a model, by name. Names sort deterministically,
/// which keeps optimiser state and checkpoints in a stable order.
pub struct Params {
    vars: BTreeMap<String, Var>,
    rng: ChaCha8Rng,
    device: Device,
    /// Prepended to every name while set (see [`Params::scoped`]).
    prefix: String,
}

impl Params {
    /// An empty store on `device` whose initialisers draw from a ChaCha8
    /// generator seeded with `seed`.
    pub fn new(seed: u64, device: Device) -> Self {
        Params {
            vars: BTreeMap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            device,
            prefix: String::new(),
        }
    }

    /// Runs `build` with every parameter it creates named `scope.NAME`, so
    /// several copies of one network (the experts of a mixture) live in
    /// one store without clashing.
    pub fn scoped<R>(&mut self, scope: &str, build: impl FnOnce(&mut Params) -> R) -> R {
        let scoped = format!("{}{scope}.", self.prefix);
        let saved = std::mem::replace(&mut self.prefix, scoped);
        let out = build(self);
        self.prefix = saved;
        out
    }

    /// The device every parameter lives on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A parameter with explicit initial values.
    pub fn add(&mut self, name: &str, values: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        let name = format!("{}{name}", self.prefix);
        let name = name.as_str();
        if self.vars.contains_key(name) {
            candle_core::bail!("parameter `{name}` defined twice");
        }
        let var = Var::from_tensor(&Tensor::from_vec(values, shape, &self.device)?)?;
        let t = var.as_tensor().clone();
        self.vars.insert(name.to_string(), var);
        Ok(t)
    }

    fn gaussian(&mut self, n: usize) -> Vec<f64> {
        (0..n).map(|_| StandardNormal.sample(&mut self.rng)).collect()
    }

    /// A `rows x cols` matrix with orthonormal rows or columns (whichever
    /// are fewer) scaled by `gain`: Saxe et al.'s initialisation, as PPO
    /// implementations use it.
    pub fn orthogonal(&mut self, name: &str, rows: usize, cols: usize, gain: f64) -> Result<Tensor> {
        let (long, short) = (rows.max(cols), rows.min(cols));
        // Columns of a long x short Gaussian matrix, orthonormalised by
        // modified Gram-Schmidt (in f64 for accuracy).
        let g = self.gaussian(long * short);
        let mut cols_v: Vec<Vec<f64>> = (0..short)
            .map(|j| (0..long).map(|i| g[i * short + j]).collect())
            .collect();
        for j in 0..short {
            for k in 0..j {
                let (done, rest) = cols_v.split_at_mut(j);
                let (col, prev) = (&mut rest[0], &done[k]);
                let dot: f64 = col.iter().zip(prev).map(|(a, b)| a * b).sum();
                col.iter_mut().zip(prev).for_each(|(a, b)| *a -= dot * b);
            }
            let norm = cols_v[j].iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
            cols_v[j].iter_mut().for_each(|x| *x /= norm);
        }
        let mut values = vec![0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                let v = if rows >= cols { cols_v[c][r] } else { cols_v[r][c] };
                values[r * cols + c] = (v * gain) as f32;
            }
        }
        self.add(name, values, &[rows, cols])
    }

    /// A parameter of `shape` with every element `value` (biases, gains).
    pub fn constant(&mut self, name: &str, shape: &[usize], value: f32) -> Result<Tensor> {
        let n = shape.iter().product();
        self.add(name, vec![value; n], shape)
    }

    /// A parameter of `shape` drawn from N(0, `std`²).
    pub fn normal(&mut self, name: &str, shape: &[usize], std: f64) -> Result<Tensor> {
        let n = shape.iter().product();
        let values = self.gaussian(n).into_iter().map(|x| (x * std) as f32).collect();
        self.add(name, values, shape)
    }

    /// Normal values cut at two standard deviations, the deviation corrected
    /// for the cut so the result has std `std` (HRM's LeCun initialisation).
    pub fn truncated_normal(&mut self, name: &str, shape: &[usize], std: f64) -> Result<Tensor> {
        let values = self.truncated_values(shape.iter().product(), std);
        self.add(name, values, shape)
    }

    /// Draws from the truncated normal of [`Params::truncated_normal`]
    /// without registering a parameter (for fixed buffers).
    pub fn truncated_values(&mut self, n: usize, std: f64) -> Vec<f32> {
        // Std of a unit normal truncated to [-2, 2].
        const TRUNCATED_STD: f64 = 0.879_625_661_034_239_8;
        let mut values = Vec::with_capacity(n);
        while values.len() < n {
            let x: f64 = StandardNormal.sample(&mut self.rng);
            if x.abs() <= 2.0 {
                values.push((x * std / TRUNCATED_STD) as f32);
            }
        }
        values
    }

    /// Trainable variables in name order.
    pub fn vars(&self) -> Vec<Var> {
        self.vars.values().cloned().collect()
    }

    /// Trainable variables with their names, in name order.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        self.vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Overwrites every parameter with the value of the same name. Every
    /// parameter must be present with its shape, and no unknown name may
    /// appear: a checkpoint of another architecture is refused, not
    /// half-loaded.
    pub fn assign(&self, values: &BTreeMap<String, Tensor>) -> std::result::Result<(), String> {
        if let Some(extra) = values.keys().find(|k| !self.vars.contains_key(*k)) {
            return Err(format!("holds `{extra}`, which this model does not have"));
        }
        for (name, var) in &self.vars {
            let t = values
                .get(name)
                .ok_or_else(|| format!("lacks the parameter `{name}`"))?;
            if t.dims() != var.as_tensor().dims() {
                return Err(format!(
                    "`{name}` has shape {:?}, this model needs {:?}",
                    t.dims(),
                    var.as_tensor().dims()
                ));
            }
            let t = t
                .to_dtype(DType::F32)
                .and_then(|t| t.to_device(&self.device))
                .map_err(|e| e.to_string())?;
            var.set(&t).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Every parameter in name order as one vector (meta-learning works
    /// on this flat view).
    pub fn flat(&self) -> Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.count());
        for v in self.vars.values() {
            out.extend(v.as_tensor().flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?);
        }
        Ok(out)
    }

    /// Overwrites every parameter from a vector laid out as [`Params::flat`].
    pub fn set_flat(&self, values: &[f64]) -> Result<()> {
        if values.len() != self.count() {
            candle_core::bail!("{} values for {} parameters", values.len(), self.count());
        }
        let mut at = 0;
        for v in self.vars.values() {
            let t = v.as_tensor();
            let n = t.elem_count();
            let part: Vec<f32> = values[at..at + n].iter().map(|x| *x as f32).collect();
            v.set(&Tensor::from_vec(part, t.dims(), &self.device)?)?;
            at += n;
        }
        Ok(())
    }

    /// Current values by name (what a checkpoint stores).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect()
    }

    /// Number of named parameters (tensors, not scalars; see
    /// [`Params::count`]).
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether no parameter has been created yet.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.vars.values().map(|v| v.as_tensor().elem_count()).sum()
    }

    /// The element type of every parameter: always `F32`.
    pub fn dtype(&self) -> DType {
        DType::F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gram(t: &Tensor, rows_orthonormal: bool) -> Vec<Vec<f32>> {
        let m = if rows_orthonormal {
            t.matmul(&t.t().unwrap()).unwrap()
        } else {
            t.t().unwrap().matmul(t).unwrap()
        };
        m.to_vec2::<f32>().unwrap()
    }

    #[test]
    fn orthogonal_matrices_are_orthonormal_and_seeded() {
        let mut p = Params::new(1, Device::Cpu);
        let wide = p.orthogonal("wide", 4, 9, 1.0).unwrap();
        let tall = p.orthogonal("tall", 9, 4, 1.0).unwrap();
        for g in [gram(&wide, true), gram(&tall, false)] {
            for (i, row) in g.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((v - want).abs() < 1e-5, "{i},{j}: {v}");
                }
            }
        }
        let again = Params::new(1, Device::Cpu).orthogonal("wide", 4, 9, 1.0).unwrap();
        assert_eq!(wide.to_vec2::<f32>().unwrap(), again.to_vec2::<f32>().unwrap());
        let other = Params::new(2, Device::Cpu).orthogonal("wide", 4, 9, 1.0).unwrap();
        assert_ne!(wide.to_vec2::<f32>().unwrap(), other.to_vec2::<f32>().unwrap());
        assert!(p.constant("wide", &[1], 0.0).is_err(), "names are unique");
        assert_eq!(p.count(), 72);
    }
}
