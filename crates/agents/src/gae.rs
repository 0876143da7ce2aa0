//! Generalised advantage estimation (Schulman et al. 2016) with the
//! truncation handling the PPO reference asks for:
//!
//! ```text
//! delta_t = r_t + gamma (1 - term_t) V(s'_t) - V(s_t)
//! A_t     = delta_t + gamma lambda (1 - done_t) A_{t+1},   done = term or trunc
//! R_t     = A_t + V(s_t)
//! ```
//! where `V(s'_t)` is the next step's value, or on truncation the value of
//! the final observation before the automatic reset, or after the last step
//! the value of the observation the rollout stopped at.

/// One rollout of `T` steps over `envs` environments, stored time-major
/// (`[t * envs + e]`).
#[derive(Debug, Clone, Copy)]
pub struct Rollout<'a> {
    /// Environments per step; every per-step slice has `T * envs` entries.
    pub envs: usize,
    /// `r_t`, the (possibly scaled) reward of each step.
    pub rewards: &'a [f32],
    /// `V(s_t)` as computed while acting.
    pub values: &'a [f32],
    /// The step ended its episode for good (ruin, drawdown stop): no
    /// bootstrap and the trace is cut.
    pub terminated: &'a [bool],
    /// The step ended its episode early (end of the data slice): bootstrap
    /// from `final_values` and cut the trace.
    pub truncated: &'a [bool],
    /// `V(final observation)` where `truncated` is set (ignored elsewhere).
    pub final_values: &'a [f32],
    /// `V` of each environment's observation after the last step.
    pub last_values: &'a [f32],
}

/// Advantages and returns, time-major like the inputs.
pub fn gae(r: &Rollout<'_>, gamma: f32, lambda: f32) -> (Vec<f32>, Vec<f32>) {
    let n = r.envs;
    let total = r.rewards.len();
    let steps = total / n.max(1);
    let mut adv = vec![0f32; total];
    let mut next_adv = vec![0f32; n];
    for t in (0..steps).rev() {
        for (e, carried) in next_adv.iter_mut().enumerate() {
            let i = t * n + e;
            let (term, trunc) = (r.terminated[i], r.truncated[i]);
            let next_value = if term {
                0.0
            } else if trunc {
                r.final_values[i]
            } else if t + 1 < steps {
                r.values[i + n]
            } else {
                r.last_values[e]
            };
            let delta = r.rewards[i] + gamma * next_value - r.values[i];
            let carry = if term || trunc { 0.0 } else { gamma * lambda * *carried };
            adv[i] = delta + carry;
            *carried = adv[i];
        }
    }
    let returns = adv.iter().zip(r.values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

/// Normalises a minibatch's advantages to mean 0 and standard deviation 1
/// (plus 1e-8, so a constant batch stays finite).
pub fn normalize_advantages(adv: &mut [f32]) {
    if adv.is_empty() {
        return;
    }
    let n = adv.len() as f32;
    let mean = adv.iter().sum::<f32>() / n;
    let std = (adv.iter().map(|a| (a - mean).powi(2)).sum::<f32>() / n).sqrt();
    for a in adv.iter_mut() {
        *a = (*a - mean) / (std + 1e-8);
    }
}

/// `1 - Var(returns - values) / Var(returns)`: 1 is a perfect critic, 0 no
/// better than a constant, negative worse.
pub(crate) fn explained_variance(values: &[f32], returns: &[f32]) -> f64 {
    let n = returns.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    let var = |xs: &mut dyn Iterator<Item = f64>| {
        let v: Vec<f64> = xs.collect();
        let mean = v.iter().sum::<f64>() / n;
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n
    };
    let var_r = var(&mut returns.iter().map(|r| *r as f64));
    if var_r < 1e-12 {
        return 0.0;
    }
    let var_diff = var(&mut returns.iter().zip(values).map(|(r, v)| (*r - *v) as f64));
    1.0 - var_diff / var_r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    #[test]
    fn lambda_one_gives_discounted_returns_minus_values() {
        let rewards = [1.0, 2.0, 3.0];
        let values = [0.5, 0.4, 0.3];
        let r = Rollout {
            envs: 1,
            rewards: &rewards,
            values: &values,
            terminated: &[false; 3],
            truncated: &[false; 3],
            final_values: &[0.0; 3],
            last_values: &[2.0],
        };
        let g = 0.9f32;
        let (adv, ret) = gae(&r, g, 1.0);
        let mc0 = 1.0 + g * 2.0 + g * g * 3.0 + g * g * g * 2.0;
        close(ret[0], mc0);
        close(adv[0], mc0 - 0.5);
        close(ret[2], 3.0 + g * 2.0);
    }

    #[test]
    fn lambda_zero_gives_one_step_td_errors() {
        let r = Rollout {
            envs: 1,
            rewards: &[1.0, 0.0],
            values: &[0.2, 0.7],
            terminated: &[false; 2],
            truncated: &[false; 2],
            final_values: &[0.0; 2],
            last_values: &[1.0],
        };
        let (adv, _) = gae(&r, 0.5, 0.0);
        close(adv[0], 1.0 + 0.5 * 0.7 - 0.2);
        close(adv[1], 0.5 * 1.0 - 0.7);
    }

    #[test]
    fn termination_stops_bootstrapping_and_truncation_bootstraps_from_the_final_observation() {
        // Two environments, time-major: env 0 terminates at t=0, env 1 is
        // truncated at t=0 with V(final obs) = 10.
        let r = Rollout {
            envs: 2,
            rewards: &[1.0, 1.0, 5.0, 5.0],
            values: &[0.0, 0.0, 3.0, 3.0],
            terminated: &[true, false, false, false],
            truncated: &[false, true, false, false],
            final_values: &[0.0, 10.0, 0.0, 0.0],
            last_values: &[0.0, 0.0],
        };
        let (adv, ret) = gae(&r, 0.9, 0.95);
        close(adv[0], 1.0);
        close(adv[1], 1.0 + 0.9 * 10.0);
        // The trace is cut: the next episode's advantages do not leak back.
        close(adv[2], 5.0 - 3.0);
        close(ret[1], adv[1]);
    }

    #[test]
    fn advantages_normalise_per_minibatch() {
        let mut a = [1.0, 2.0, 3.0, 4.0];
        normalize_advantages(&mut a);
        close(a.iter().sum::<f32>(), 0.0);
        close((a.iter().map(|x| x * x).sum::<f32>() / 4.0).sqrt(), 1.0);
        let mut flat = [2.0; 3];
        normalize_advantages(&mut flat);
        assert!(flat.iter().all(|x| *x == 0.0));
    }
}
