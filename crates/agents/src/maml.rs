//! Meta-learning updates (algorithms.md §3) over a flat parameter vector,
//! so they serve any model whose parameters can be read and written as one
//! (every agent here: `Params` flattens in name order).
//!
//! - [`adapt`]: the inner loop: fast weights θ' from k gradient steps on a
//!   task's support data, leaving θ untouched;
//! - [`meta_gradient`]: the outer loop's gradient of the query loss at θ'
//!   with respect to θ, in three modes:
//!   - second-order MAML: the chain rule through every inner step,
//!     g ← (I − α H_j) g from the last step to the first, where each
//!     Hessian-vector product is taken by central differences of
//!     gradients, H v ≈ [∇L(θ + r v) − ∇L(θ − r v)] / 2r with
//!     r = 0.01/‖v‖ (exact to O(r²); candle has no double backward);
//!   - first-order MAML: g = ∇L_query(θ');
//!   - Reptile: g = θ − θ' (the step θ ← θ − ε g moves toward the adapted
//!     weights).

pub use crate::settings::MetaMode;

/// The inner loop: `steps` gradient steps of size `alpha` from `theta` on
/// the support loss whose gradient `support_grad` returns. Returns every
/// iterate θ_0 = θ, …, θ_k (second-order MAML needs them all).
pub fn adapt(
    theta: &[f64],
    alpha: f64,
    steps: usize,
    support_grad: &mut dyn FnMut(&[f64]) -> Vec<f64>,
) -> Vec<Vec<f64>> {
    let mut iterates = Vec::with_capacity(steps + 1);
    iterates.push(theta.to_vec());
    for _ in 0..steps {
        let current = iterates.last().expect("one iterate at least");
        let g = support_grad(current);
        let next: Vec<f64> = current.iter().zip(&g).map(|(t, g)| t - alpha * g).collect();
        iterates.push(next);
    }
    iterates
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// H(θ)·v by central differences of the gradient at θ ± r v.
pub fn hessian_vector_product(theta: &[f64], v: &[f64], grad: &mut dyn FnMut(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let n = norm(v);
    if n == 0.0 {
        return vec![0.0; v.len()];
    }
    let r = 0.01 / n;
    let plus: Vec<f64> = theta.iter().zip(v).map(|(t, v)| t + r * v).collect();
    let minus: Vec<f64> = theta.iter().zip(v).map(|(t, v)| t - r * v).collect();
    let (gp, gm) = (grad(&plus), grad(&minus));
    gp.iter().zip(&gm).map(|(a, b)| (a - b) / (2.0 * r)).collect()
}

/// The meta-gradient for one task, given the inner loop's `iterates`
/// (from [`adapt`]) and the gradients of the support and query losses.
pub fn meta_gradient(
    mode: MetaMode,
    iterates: &[Vec<f64>],
    alpha: f64,
    support_grad: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    query_grad: &mut dyn FnMut(&[f64]) -> Vec<f64>,
) -> Vec<f64> {
    let theta = &iterates[0];
    let adapted = iterates.last().expect("adapt returns at least θ");
    match mode {
        MetaMode::Reptile => theta.iter().zip(adapted).map(|(t, a)| t - a).collect(),
        MetaMode::FirstOrder => query_grad(adapted),
        MetaMode::SecondOrder => {
            let mut g = query_grad(adapted);
            // dθ_{j+1}/dθ_j = I − α H(θ_j), applied from the last step back.
            for theta_j in iterates[..iterates.len() - 1].iter().rev() {
                let hv = hessian_vector_product(theta_j, &g, support_grad);
                for (gi, h) in g.iter_mut().zip(&hv) {
                    *gi -= alpha * h;
                }
            }
            g
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny problem with known derivatives: L(θ) = Σ_i (c_i θ_i³/3 +
    /// ½ a_i θ_i²) − b·θ + s θ_0 θ_1; gradient and Hessian in closed form.
    struct Cubic {
        c: [f64; 2],
        a: [f64; 2],
        b: [f64; 2],
        s: f64,
    }

    impl Cubic {
        fn grad(&self, t: &[f64]) -> Vec<f64> {
            vec![
                self.c[0] * t[0] * t[0] + self.a[0] * t[0] - self.b[0] + self.s * t[1],
                self.c[1] * t[1] * t[1] + self.a[1] * t[1] - self.b[1] + self.s * t[0],
            ]
        }

        fn hessian(&self, t: &[f64]) -> [[f64; 2]; 2] {
            [
                [2.0 * self.c[0] * t[0] + self.a[0], self.s],
                [self.s, 2.0 * self.c[1] * t[1] + self.a[1]],
            ]
        }
    }

    fn mat_t_vec(m: &[[f64; 2]; 2], v: &[f64]) -> Vec<f64> {
        // H v (the Hessian is symmetric, so no transpose is needed).
        vec![m[0][0] * v[0] + m[0][1] * v[1], m[1][0] * v[0] + m[1][1] * v[1]]
    }

    #[test]
    fn second_order_matches_the_analytic_meta_gradient() {
        let support = Cubic {
            c: [0.3, -0.2],
            a: [1.0, 2.0],
            b: [0.5, -1.0],
            s: 0.4,
        };
        let query = Cubic {
            c: [0.1, 0.25],
            a: [1.5, 0.5],
            b: [-0.3, 0.8],
            s: -0.2,
        };
        let theta = [0.7, -0.4];
        let alpha = 0.1;
        for steps in [1, 3] {
            let iterates = adapt(&theta, alpha, steps, &mut |t| support.grad(t));
            // Analytic: g = Π_j (I − α H_tr(θ_j)) ∇L_query(θ_k), newest first.
            let mut want = query.grad(iterates.last().unwrap());
            for t in iterates[..steps].iter().rev() {
                let h = support.hessian(t);
                let hv = mat_t_vec(&h, &want);
                want = want.iter().zip(&hv).map(|(w, h)| w - alpha * h).collect();
            }
            let got = meta_gradient(
                MetaMode::SecondOrder,
                &iterates,
                alpha,
                &mut |t| support.grad(t),
                &mut |t| query.grad(t),
            );
            for i in 0..2 {
                assert!(
                    (got[i] - want[i]).abs() < 1e-9,
                    "{steps} steps, {i}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
            // First order drops the Hessian terms: a visibly different answer.
            let fo = meta_gradient(
                MetaMode::FirstOrder,
                &iterates,
                alpha,
                &mut |t| support.grad(t),
                &mut |t| query.grad(t),
            );
            assert!((fo[0] - want[0]).abs() > 1e-3);
        }
    }

    #[test]
    fn the_meta_gradient_is_the_derivative_of_the_query_loss_after_adaptation() {
        // Check against a numerical derivative of θ ↦ L_query(adapt(θ)).
        let support = Cubic {
            c: [0.2, 0.1],
            a: [1.0, 1.0],
            b: [0.0, 0.3],
            s: 0.1,
        };
        let loss_q = |t: &[f64]| 0.25 * t[0].powi(4) + (t[1] - 0.5).powi(2) + t[0] * t[1];
        let grad_q = |t: &[f64]| vec![t[0].powi(3) + t[1], 2.0 * (t[1] - 0.5) + t[0]];
        let theta = [0.3, 0.9];
        let alpha = 0.2;
        let outer = |t: &[f64]| {
            let it = adapt(t, alpha, 2, &mut |x| support.grad(x));
            loss_q(it.last().unwrap())
        };
        let iterates = adapt(&theta, alpha, 2, &mut |x| support.grad(x));
        let got = meta_gradient(
            MetaMode::SecondOrder,
            &iterates,
            alpha,
            &mut |x| support.grad(x),
            &mut |x| grad_q(x),
        );
        let h = 1e-6;
        for i in 0..2 {
            let mut p = theta;
            let mut m = theta;
            p[i] += h;
            m[i] -= h;
            let numeric = (outer(&p) - outer(&m)) / (2.0 * h);
            assert!((got[i] - numeric).abs() < 1e-6, "{i}: {} vs {numeric}", got[i]);
        }
    }

    #[test]
    fn reptile_points_from_the_adapted_weights_back_to_theta() {
        let theta = [1.0, 2.0];
        let iterates = adapt(&theta, 0.5, 2, &mut |t| t.to_vec());
        // Two steps of θ ← θ − 0.5 θ: θ' = θ / 4.
        assert_eq!(iterates.last().unwrap(), &vec![0.25, 0.5]);
        let g = meta_gradient(MetaMode::Reptile, &iterates, 0.5, &mut |t| t.to_vec(), &mut |t| {
            t.to_vec()
        });
        assert_eq!(g, vec![0.75, 1.5]);
        assert_eq!(MetaMode::parse("maml").unwrap(), MetaMode::SecondOrder);
        assert!(MetaMode::parse("mamal").is_none());
    }
}
