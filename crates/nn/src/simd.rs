//! Wider vector instructions for hot elementwise loops, chosen at run time.
//!
//! The workspace compiles for baseline x86-64 (SSE2, 4 lanes per vector) so
//! the binary runs on any x86-64 machine; gemm already picks its AVX-512
//! kernels at run time. A loop run through [`wide`] is compiled a second time
//! with AVX-512 enabled and takes that path when the CPU has it (16 lanes).

/// Runs `f`, compiled for AVX-512 where the CPU supports it.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the feature the function is compiled
            // with (checked just above).
            return unsafe { avx512(f) };
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_paths_compute_the_same() {
        let x: Vec<f32> = (0..1000).map(|i| i as f32 * 0.37).collect();
        let plain: Vec<f32> = x.iter().map(|v| v.sqrt() * 2.0 + 1.0).collect();
        let widened = super::wide(|| x.iter().map(|v| v.sqrt() * 2.0 + 1.0).collect::<Vec<f32>>());
        assert_eq!(plain, widened);
    }
}
