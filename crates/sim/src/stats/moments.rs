//! Running mean and variance without storing the values (Welford), for
//! hot loops that must not allocate per bar.

/// Count, mean and sum of squared deviations of the values pushed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunningMoments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl RunningMoments {
    /// Adds one value.
    #[inline]
    pub fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    /// Values pushed.
    pub fn count(&self) -> usize {
        self.n as usize
    }

    /// Their mean (0 before any).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sample variance (n - 1 denominator); 0 with fewer than two values.
    pub fn variance(&self) -> f64 {
        if self.n < 2.0 {
            0.0
        } else {
            self.m2 / (self.n - 1.0)
        }
    }

    /// Sample standard deviation; 0 with fewer than two values.
    pub fn std(&self) -> f64 {
        self.variance().sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_two_pass_sample_moments() {
        let xs = [0.01, -0.02, 0.03, 0.0, 0.015, -0.005];
        let mut m = RunningMoments::default();
        assert_eq!((m.count(), m.variance()), (0, 0.0));
        xs.iter().for_each(|x| m.push(*x));
        let mean = xs.iter().sum::<f64>() / 6.0;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0;
        assert_eq!(m.count(), 6);
        assert!((m.mean() - mean).abs() < 1e-15 && (m.variance() - var).abs() < 1e-15);
        let mut one = RunningMoments::default();
        one.push(3.0);
        assert_eq!((one.mean(), one.std()), (3.0, 0.0));
    }
}
