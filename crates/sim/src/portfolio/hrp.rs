//! Hierarchical risk parity (López de Prado 2016, "Building Diversified
//! Portfolios that Outperform Out of Sample"; `../shared/docs/algorithms.md`
//! section 6): weights from a covariance matrix without inverting it.
//!
//! 1. Correlation distance `d_ij = sqrt((1 - rho_ij) / 2)`, clustered by
//!    single linkage on `d` directly, as PyPortfolioOpt's `HRPOpt` does
//!    (the paper's code clusters on the distance between columns of `d`).
//! 2. Quasi-diagonalisation: the leaves in the order of a pre-order walk
//!    from the last merge, first child before second.
//! 3. Recursive bisection by position: each list is halved, each half
//!    weighted by its inverse-variance portfolio's variance.
//!
//! Merges are labelled as SciPy's `linkage` labels them (leaves `0..n`,
//! the k-th merge `n + k`, the smaller label first), so the leaf order, and
//! with it the weights, match `HRPOpt`'s; `tests/hrp_reference.rs` checks
//! them against PyPortfolioOpt.

/// One merge of the single-linkage tree, as a row of SciPy's linkage
/// matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Merge {
    /// The first child's label (the smaller).
    pub first: usize,
    /// The second child's label.
    pub second: usize,
    /// The distance at which they merged.
    pub distance: f64,
    /// Leaves under the new cluster.
    pub size: usize,
}

/// Weights and how they were reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Allocation {
    /// One per asset, in the covariance's order: non-negative, summing to 1.
    pub weights: Vec<f64>,
    /// The quasi-diagonal leaf order.
    pub order: Vec<usize>,
    /// The single-linkage tree, `n - 1` merges in the order made.
    pub linkage: Vec<Merge>,
}

/// Why weights could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HrpError {
    /// The matrix is not `n x n` with `n >= 1`.
    #[error("a covariance matrix of {len} numbers is not square")]
    NotSquare {
        /// Numbers given.
        len: usize,
    },
    /// An asset's variance is zero, negative or not a number.
    #[error("asset {asset} has variance {variance}: HRP needs every asset to move (a flat or missing price series?)")]
    NoVariance {
        /// The asset's index.
        asset: usize,
        /// Its variance.
        variance: f64,
    },
}

/// HRP weights of the row-major `n x n` covariance `cov`.
pub fn hrp(cov: &[f64]) -> Result<Allocation, HrpError> {
    let n = (cov.len() as f64).sqrt().round() as usize;
    if n == 0 || n * n != cov.len() {
        return Err(HrpError::NotSquare { len: cov.len() });
    }
    for i in 0..n {
        let v = cov[i * n + i];
        if !(v.is_finite() && v > 0.0) {
            return Err(HrpError::NoVariance { asset: i, variance: v });
        }
    }
    let distance = |i: usize, j: usize| {
        let rho = cov[i * n + j] / (cov[i * n + i] * cov[j * n + j]).sqrt();
        ((1.0 - rho) / 2.0).clamp(0.0, 1.0).sqrt()
    };
    let linkage = single_linkage(n, distance);
    let order = quasi_diagonal(n, &linkage);
    let weights = bisect(cov, n, &order);
    Ok(Allocation {
        weights,
        order,
        linkage,
    })
}

/// Single-linkage agglomeration: repeatedly merge the two closest
/// clusters, a cluster's distance to another being the least over their
/// members. O(n^3), ample for the hundreds of instruments a session holds.
fn single_linkage(n: usize, distance: impl Fn(usize, usize) -> f64) -> Vec<Merge> {
    // Active clusters: (label, size); d[a][b] between active slots.
    let mut label: Vec<usize> = (0..n).collect();
    let mut size = vec![1usize; n];
    let mut active = vec![true; n];
    let mut d = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            d[i * n + j] = if i == j { 0.0 } else { distance(i, j) };
        }
    }
    let mut merges = Vec::with_capacity(n.saturating_sub(1));
    for k in 0..n.saturating_sub(1) {
        let (mut best, mut pair) = (f64::INFINITY, (0, 0));
        for i in (0..n).filter(|&i| active[i]) {
            for j in (i + 1..n).filter(|&j| active[j]) {
                if d[i * n + j] < best {
                    best = d[i * n + j];
                    pair = (i, j);
                }
            }
        }
        let (i, j) = pair;
        let (first, second) = (label[i].min(label[j]), label[i].max(label[j]));
        merges.push(Merge {
            first,
            second,
            distance: best,
            size: size[i] + size[j],
        });
        // Slot i becomes the new cluster; slot j retires.
        for m in 0..n {
            let joined = d[i * n + m].min(d[j * n + m]);
            d[i * n + m] = joined;
            d[m * n + i] = joined;
        }
        d[i * n + i] = 0.0;
        label[i] = n + k;
        size[i] += size[j];
        active[j] = false;
    }
    merges
}

/// The leaves in pre-order from the root, first child before second.
fn quasi_diagonal(n: usize, linkage: &[Merge]) -> Vec<usize> {
    let mut order = Vec::with_capacity(n);
    let mut stack = vec![2 * n - 2];
    while let Some(node) = stack.pop() {
        if node < n {
            order.push(node);
        } else {
            let m = &linkage[node - n];
            stack.push(m.second);
            stack.push(m.first);
        }
    }
    order
}

/// The variance of the inverse-variance portfolio of `assets`.
fn cluster_variance(cov: &[f64], n: usize, assets: &[usize]) -> f64 {
    let inverse: Vec<f64> = assets.iter().map(|&a| 1.0 / cov[a * n + a]).collect();
    let total: f64 = inverse.iter().sum();
    let w: Vec<f64> = inverse.iter().map(|v| v / total).collect();
    let mut variance = 0.0;
    for (x, &a) in assets.iter().enumerate() {
        for (y, &b) in assets.iter().enumerate() {
            variance += w[x] * cov[a * n + b] * w[y];
        }
    }
    variance
}

/// Recursive bisection of `order` by position.
fn bisect(cov: &[f64], n: usize, order: &[usize]) -> Vec<f64> {
    let mut weights = vec![1.0; n];
    let mut lists: Vec<&[usize]> = vec![order];
    while !lists.is_empty() {
        let mut halves = Vec::with_capacity(lists.len() * 2);
        for list in lists.into_iter().filter(|l| l.len() > 1) {
            let (left, right) = list.split_at(list.len() / 2);
            let (vl, vr) = (cluster_variance(cov, n, left), cluster_variance(cov, n, right));
            let alpha = 1.0 - vl / (vl + vr);
            for &a in left {
                weights[a] *= alpha;
            }
            for &a in right {
                weights[a] *= 1.0 - alpha;
            }
            halves.push(left);
            halves.push(right);
        }
        lists = halves;
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov_of(vols: &[f64], corr: impl Fn(usize, usize) -> f64) -> Vec<f64> {
        let n = vols.len();
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                c[i * n + j] = vols[i] * vols[j] * if i == j { 1.0 } else { corr(i, j) };
            }
        }
        c
    }

    #[test]
    fn uncorrelated_assets_get_inverse_variance_weights_when_the_halves_balance() {
        // Two uncorrelated assets: HRP is inverse variance.
        let a = hrp(&cov_of(&[0.1, 0.2], |_, _| 0.0)).unwrap();
        let iv = [1.0 / 0.01, 1.0 / 0.04];
        let total = iv[0] + iv[1];
        assert!((a.weights[0] - iv[0] / total).abs() < 1e-12, "{:?}", a.weights);
        assert!((a.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(a.linkage.len(), 1);
        assert_eq!((a.linkage[0].first, a.linkage[0].second, a.linkage[0].size), (0, 1, 2));
    }

    #[test]
    fn correlated_pairs_cluster_first_and_share_their_budget() {
        // 0 and 2 move together, 1 and 3 move together.
        let pairs = |i: usize, j: usize| if i % 2 == j % 2 { 0.9 } else { 0.0 };
        let a = hrp(&cov_of(&[0.1, 0.1, 0.1, 0.1], pairs)).unwrap();
        let first_two: Vec<(usize, usize)> = a.linkage[..2].iter().map(|m| (m.first, m.second)).collect();
        assert!(
            first_two.contains(&(0, 2)) && first_two.contains(&(1, 3)),
            "{:?}",
            a.linkage
        );
        assert_eq!(a.linkage[2].size, 4);
        // Equal vols and symmetric structure: equal weights.
        for w in &a.weights {
            assert!((w - 0.25).abs() < 1e-12, "{:?}", a.weights);
        }
        let mut sorted = a.order.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
        assert!(
            (a.order[0] % 2 == a.order[1] % 2) && (a.order[2] % 2 == a.order[3] % 2),
            "pairs sit together: {:?}",
            a.order
        );
    }

    #[test]
    fn bad_matrices_are_refused_by_name() {
        assert_eq!(hrp(&[1.0, 2.0, 3.0]).unwrap_err(), HrpError::NotSquare { len: 3 });
        let e = hrp(&cov_of(&[0.1, 0.0], |_, _| 0.0)).unwrap_err();
        assert!(e.to_string().contains("asset 1 has variance 0"), "{e}");
        let one = hrp(&[0.04]).unwrap();
        assert_eq!((one.weights.clone(), one.order.clone()), (vec![1.0], vec![0]));
    }
}
