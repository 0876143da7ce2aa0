//! Fused CPU operations with hand-written backward passes: a dense layer
//! and layer normalisation.
//!
//! candle builds each of these from several operations, and its backward
//! pass then allocates a zeroed gradient per intermediate tensor and sums a
//! broadcast bias over the batch with a strided reduction. Fused, a dense
//! layer is one matrix multiply each way plus a row sum, and layer
//! normalisation is one pass each way. The composed forms stay for other
//! devices and as the reference the tests compare against.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Error, Layout, Result, Shape, Storage, Tensor};
use gemm::gemm;
pub(crate) use gemm::Parallelism;

fn parallelism() -> Parallelism {
    match threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// candle's thread count, asked once: without `RAYON_NUM_THREADS` set,
/// candle counts physical cores by reading `/proc/cpuinfo` on every call,
/// which cost the LSTM's 32 small multiplies a millisecond per decision.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(candle_core::utils::get_num_threads)
}

/// `dst = (accumulate ? dst : 0) + lhs * rhs` for row-major `dst: [m, n]`,
/// `lhs: [m, k]` and `rhs: [k, n]`, the operands given with (row stride,
/// column stride) so transposes cost nothing.
pub(crate) fn matmul(
    dst: &mut [f32],
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    matmul_with(parallelism(), dst, accumulate, (m, n, k), lhs, rhs)
}

/// [`matmul`] with the parallelism chosen by the caller.
pub(crate) fn matmul_with(
    parallelism: Parallelism,
    dst: &mut [f32],
    accumulate: bool,
    (m, n, k): (usize, usize, usize),
    (lhs, lhs_rs, lhs_cs): (&[f32], usize, usize),
    (rhs, rhs_rs, rhs_cs): (&[f32], usize, usize),
) {
    // Out-of-bounds accesses would be undefined behaviour: check the extent
    // of each operand under its strides, in release builds too.
    assert!(m > 0 && n > 0 && k > 0, "matmul with an empty dimension");
    let extent = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs + 1;
    assert!(dst.len() >= m * n, "matmul destination too small");
    assert!(lhs.len() >= extent(m, k, lhs_rs, lhs_cs), "matmul lhs too small");
    assert!(rhs.len() >= extent(k, n, rhs_rs, rhs_cs), "matmul rhs too small");
    // SAFETY: the asserts keep every access inside the slices, and `dst`
    // cannot alias `lhs` or `rhs` (a `&mut` borrow beside two `&`).
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The contiguous f32 data of a storage, or an error naming `what`.
pub(crate) fn storage_f32<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => return Err(Error::Msg(format!("{what} must be f32"))),
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => Err(Error::Msg(format!("{what} must be contiguous"))),
    }
}

/// Runs `f` over a CPU tensor's f32 data (made contiguous first if needed)
/// without copying a contiguous tensor.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    if !t.is_contiguous() {
        return with_f32(&t.contiguous()?, f);
    }
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(storage_f32(s, layout, "tensor")?),
        _ => Err(Error::Msg("fused kernels run on the CPU only".into())),
    }
}

fn poisoned<T>(_: T) -> Error {
    Error::Msg("fused kernel: poisoned cache".into())
}

/// `y = x W^T + b` for `x: [rows, in]`, `W: [out, in]`, `b: [out]`.
pub(crate) struct LinearOp;

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
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
        let (rows, input) = l1.shape().dims2()?;
        let (output, w_in) = l2.shape().dims2()?;
        if w_in != input || l3.shape().dims1()? != output || rows == 0 {
            return Err(Error::Msg(format!(
                "fused linear: input {:?}, weight {:?} and bias {:?} do not fit",
                l1.shape(),
                l2.shape(),
                l3.shape()
            )));
        }
        let x = storage_f32(s1, l1, "linear input")?;
        let w = storage_f32(s2, l2, "linear weight")?;
        let b = storage_f32(s3, l3, "linear bias")?;
        let mut y = Vec::with_capacity(rows * output);
        for _ in 0..rows {
            y.extend_from_slice(b);
        }
        matmul(&mut y, true, (rows, output, input), (x, input, 1), (w, 1, input));
        Ok((CpuStorage::F32(y), Shape::from((rows, output))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, input) = x.dims2()?;
        let output = w.dim(0)?;
        // The input of a first layer is data, not a variable: no gradient.
        let mut dx = x.track_op().then(|| vec![0f32; rows * input]);
        let mut dw = vec![0f32; output * input];
        let mut db = vec![0f32; output];
        with_f32(dy, |dy| {
            if let Some(dx) = dx.as_mut() {
                with_f32(w, |w| {
                    // dx = dy W
                    matmul(dx, false, (rows, input, output), (dy, output, 1), (w, input, 1));
                    Ok(())
                })?;
            }
            with_f32(x, |x| {
                // dW = dy^T x
                matmul(&mut dw, false, (output, input, rows), (dy, 1, output), (x, input, 1));
                Ok(())
            })?;
            for row in dy.chunks_exact(output) {
                for (acc, g) in db.iter_mut().zip(row) {
                    *acc += g;
                }
            }
            Ok(())
        })?;
        let d = x.device();
        Ok((
            dx.map(|dx| Tensor::from_vec(dx, (rows, input), d)).transpose()?,
            Some(Tensor::from_vec(dw, (output, input), d)?),
            Some(Tensor::from_vec(db, output, d)?),
        ))
    }
}

pub(crate) const LAYER_NORM_EPS: f32 = 1e-5;

/// Layer normalisation over the last dimension of `x: [rows, dim]` with
/// gain and bias `[dim]`.
pub(crate) struct LayerNormOp {
    /// The normalised input `[rows, dim]` and `1 / std` per row.
    saved: Mutex<Option<(Vec<f32>, Vec<f32>)>>,
}

impl LayerNormOp {
    pub fn new() -> Self {
        LayerNormOp {
            saved: Mutex::new(None),
        }
    }
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
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
        let (rows, dim) = l1.shape().dims2()?;
        if l2.shape().dims1()? != dim || l3.shape().dims1()? != dim || dim == 0 {
            return Err(Error::Msg(format!(
                "fused layer norm: input {:?}, gain {:?} and bias {:?} do not fit",
                l1.shape(),
                l2.shape(),
                l3.shape()
            )));
        }
        let x = storage_f32(s1, l1, "layer norm input")?;
        let gain = storage_f32(s2, l2, "layer norm gain")?;
        let bias = storage_f32(s3, l3, "layer norm bias")?;
        let mut normed = vec![0f32; rows * dim];
        let mut rstd = vec![0f32; rows];
        let mut y = vec![0f32; rows * dim];
        let n = dim as f32;
        for r in 0..rows {
            let xs = &x[r * dim..(r + 1) * dim];
            let mean = xs.iter().sum::<f32>() / n;
            let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
            rstd[r] = inv;
            let nr = &mut normed[r * dim..(r + 1) * dim];
            let yr = &mut y[r * dim..(r + 1) * dim];
            for j in 0..dim {
                nr[j] = (xs[j] - mean) * inv;
                yr[j] = nr[j] * gain[j] + bias[j];
            }
        }
        *self.saved.lock().map_err(poisoned)? = Some((normed, rstd));
        Ok((CpuStorage::F32(y), Shape::from((rows, dim))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gain: &Tensor,
        _bias: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, dim) = x.dims2()?;
        let guard = self.saved.lock().map_err(poisoned)?;
        let (normed, rstd) = guard
            .as_ref()
            .ok_or_else(|| Error::Msg("fused layer norm: backward before forward".into()))?;
        let mut dx = vec![0f32; rows * dim];
        let mut dgain = vec![0f32; dim];
        let mut dbias = vec![0f32; dim];
        let n = dim as f32;
        with_f32(dy, |dy| {
            with_f32(gain, |gain| {
                for r in 0..rows {
                    let (dyr, nr) = (&dy[r * dim..(r + 1) * dim], &normed[r * dim..(r + 1) * dim]);
                    // dx = rstd (g - mean(g) - x_hat mean(g x_hat)), g = dy * gain.
                    let (mut sum_g, mut sum_gn) = (0f32, 0f32);
                    for j in 0..dim {
                        let g = dyr[j] * gain[j];
                        sum_g += g;
                        sum_gn += g * nr[j];
                        dgain[j] += dyr[j] * nr[j];
                        dbias[j] += dyr[j];
                    }
                    let (mean_g, mean_gn) = (sum_g / n, sum_gn / n);
                    let dxr = &mut dx[r * dim..(r + 1) * dim];
                    for j in 0..dim {
                        dxr[j] = rstd[r] * (dyr[j] * gain[j] - mean_g - nr[j] * mean_gn);
                    }
                }
                Ok(())
            })
        })?;
        let d = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (rows, dim), d)?),
            Some(Tensor::from_vec(dgain, dim, d)?),
            Some(Tensor::from_vec(dbias, dim, d)?),
        ))
    }
}

/// `tanh` as a ratio of odd and even polynomials on `[-7.9, 7.9]` (the
/// approximation Eigen and PyTorch's CPU kernels use), saturating beyond.
/// Branch-free so loops over it vectorise; glibc's scalar `tanhf` made up
/// a sixth of a PPO iteration. Absolute error below 1e-6 (tested). Plain
/// multiply-adds: without the FMA target feature `mul_add` is a libm call.
#[inline(always)]
pub(crate) fn fast_tanh(x: f32) -> f32 {
    let x = x.clamp(-7.905_311, 7.905_311);
    let x2 = x * x;
    let mut p = x2 * -2.760_768_5e-16 + 2.000_188e-13;
    p = x2 * p + -8.604_672e-11;
    p = x2 * p + 5.122_297e-8;
    p = x2 * p + 1.485_722_4e-5;
    p = x2 * p + 6.372_619_3e-4;
    p = x2 * p + 4.893_524_6e-3;
    let mut q = x2 * 1.198_258_4e-6 + 1.185_347_1e-4;
    q = x2 * q + 2.268_434_6e-3;
    q = x2 * q + 4.893_525e-3;
    x * p / q
}

/// `sigmoid(x) = (1 + tanh(x / 2)) / 2`, through [`fast_tanh`].
#[inline(always)]
pub(crate) fn fast_sigmoid(x: f32) -> f32 {
    0.5 * fast_tanh(0.5 * x) + 0.5
}

/// Elementwise `tanh` with the gradient `1 - tanh^2` from the output.
pub(crate) struct TanhOp;

impl candle_core::CustomOp1 for TanhOp {
    fn name(&self) -> &'static str {
        "fast-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = storage_f32(s, l, "tanh input")?;
        Ok((
            CpuStorage::F32(x.iter().map(|v| fast_tanh(*v)).collect()),
            l.shape().clone(),
        ))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dx = with_f32(y, |y| {
            with_f32(dy, |dy| Ok(y.iter().zip(dy).map(|(y, g)| g * (1.0 - y * y)).collect()))
        })?;
        Ok(Some(Tensor::from_vec(dx, y.shape(), y.device())?))
    }
}

/// `tanh` through the fused kernel on the CPU, candle's elsewhere.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op1(TanhOp)
    } else {
        x.tanh()
    }
}

/// Softmax over the last dimension, with its gradient `y (dy - sum(dy y))`.
/// candle_nn's `softmax_last_dim` has no backward pass (its gradient is
/// silently zero), which left attention scores, and so the query and key
/// projections, untrained.
pub(crate) struct SoftmaxOp;

impl candle_core::CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "softmax-last-dim-with-gradient"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = storage_f32(s, l, "softmax input")?;
        let dim = l.shape().dims().last().copied().unwrap_or(1).max(1);
        let mut out = vec![0f32; x.len()];
        for (row, o) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
            let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
            let mut sum = 0f32;
            for (o, v) in o.iter_mut().zip(row) {
                *o = (v - max).exp();
                sum += *o;
            }
            o.iter_mut().for_each(|v| *v /= sum);
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let dim = y.dims().last().copied().unwrap_or(1).max(1);
        let dx = with_f32(y, |y| {
            with_f32(dy, |dy| {
                let mut dx = vec![0f32; y.len()];
                for ((y, g), d) in y
                    .chunks_exact(dim)
                    .zip(dy.chunks_exact(dim))
                    .zip(dx.chunks_exact_mut(dim))
                {
                    let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
                    for ((d, y), g) in d.iter_mut().zip(y).zip(g) {
                        *d = y * (g - dot);
                    }
                }
                Ok(dx)
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, y.shape(), y.device())?))
    }
}

/// Softmax over the last dimension, differentiable: the kernel above on
/// the CPU, candle's composed operations elsewhere.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        x.contiguous()?.apply_op1(SoftmaxOp)
    } else {
        candle_nn::ops::softmax(x, candle_core::D::Minus1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_has_the_composed_operations_values_and_gradient() {
        let d = candle_core::Device::Cpu;
        let x = Tensor::new(&[[0.3f32, -1.2, 2.0, 0.1], [5.0, 5.0, -3.0, 0.0]], &d).unwrap();
        let w = Tensor::new(&[[1.0f32, -2.0, 0.5, 3.0], [0.2, 0.7, -1.0, 4.0]], &d).unwrap();
        let grad = |f: &dyn Fn(&Tensor) -> Result<Tensor>| {
            let v = candle_core::Var::from_tensor(&x).unwrap();
            let y = f(v.as_tensor()).unwrap();
            let g = (&y * &w).unwrap().sum_all().unwrap().backward().unwrap();
            let dx = g.get(v.as_tensor()).expect("a gradient reaches the input").clone();
            (y.to_vec2::<f32>().unwrap(), dx.to_vec2::<f32>().unwrap())
        };
        let (y1, g1) = grad(&|t| softmax_last_dim(t));
        let (y2, g2) = grad(&|t| candle_nn::ops::softmax(t, candle_core::D::Minus1));
        for (a, b) in y1
            .iter()
            .flatten()
            .zip(y2.iter().flatten())
            .chain(g1.iter().flatten().zip(g2.iter().flatten()))
        {
            assert!((a - b).abs() < 1e-6, "{y1:?} {g1:?} vs {y2:?} {g2:?}");
        }
        assert!(g1.iter().flatten().any(|v| v.abs() > 0.01));
    }

    #[test]
    fn fast_tanh_and_sigmoid_are_within_1e_6_of_the_exact_functions() {
        let mut worst = (0f64, 0f64);
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let t = (fast_tanh(x) as f64 - (x as f64).tanh()).abs();
            let s = (fast_sigmoid(x) as f64 - 1.0 / (1.0 + (-(x as f64)).exp())).abs();
            worst = (worst.0.max(t), worst.1.max(s));
        }
        assert!(worst.0 < 1e-6 && worst.1 < 1e-6, "worst errors {worst:?}");
        assert_eq!(fast_tanh(1e4), fast_tanh(8.0));
        assert!(fast_tanh(-50.0) <= -0.999_999 && fast_tanh(0.0) == 0.0);
    }

    #[test]
    fn tanh_op_matches_candle_forward_and_backward() {
        let d = candle_core::Device::Cpu;
        let x = candle_core::Var::from_tensor(&Tensor::randn(0f32, 2.0, (6, 5), &d).unwrap()).unwrap();
        let w = Tensor::randn(0f32, 1.0, (6, 5), &d).unwrap();
        let ours = tanh(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().tanh().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let g1 = (&ours * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let g2 = (&theirs * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for (a, b) in flat(&ours).iter().zip(flat(&theirs)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        for (a, b) in flat(g1.get(x.as_tensor()).unwrap())
            .iter()
            .zip(flat(g2.get(x.as_tensor()).unwrap()))
        {
            assert!((a - b).abs() < 1e-5, "gradient {a} vs {b}");
        }
    }
}
