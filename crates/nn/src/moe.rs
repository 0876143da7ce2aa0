//! Mixture of experts (Jacobs et al. 1991; algorithms.md §5): a gating
//! network that weighs specialist policies, and the arithmetic that turns
//! their outputs into one policy.
//!
//! With gate weights g (softmax over experts) and expert k's probability
//! π_k(a) of the joint action (type and quantity):
//! - log π(a) = logsumexp_k(log g_k + log π_k(a)), which PPO's ratio needs;
//! - V = Σ_k g_k V_k;
//! - the blended quantity Σ_k g_k E\[q_k\], optionally scaled down by the
//!   gate's uncertainty 1 − H(g)/log K.
//!
//! Soft blending changes the position gradually as the gate's weights move,
//! where switching to the most likely regime's expert would jump.

use candle_core::{Result, Tensor, D};

use crate::heads::{masked_log_probs, Beta};
use crate::kernels;
use crate::params::Params;
use crate::policy::{PolicyConfig, PolicyNet, PolicyOutput};
use crate::transformer::Linear;

/// Market-state features (and regime probabilities) in, log-weights of the
/// experts out.
pub struct GatingNet {
    hidden: Linear,
    out: Linear,
    experts: usize,
}

impl GatingNet {
    /// `inputs` → tanh layer of `hidden` → `experts` log-weights; the output
    /// layer starts near zero so the gate starts near uniform.
    pub fn new(p: &mut Params, name: &str, inputs: usize, hidden: usize, experts: usize) -> Result<GatingNet> {
        Ok(GatingNet {
            hidden: Linear::new(p, &format!("{name}.hidden"), inputs, hidden, 2f64.sqrt())?,
            // Small output weights: every expert starts with about 1/K.
            out: Linear::new(p, &format!("{name}.out"), hidden, experts, 0.01)?,
            experts,
        })
    }

    /// Number of experts K the gate weighs.
    pub fn experts(&self) -> usize {
        self.experts
    }

    /// `inputs: [B, I]` → `log g: [B, K]`.
    pub fn forward(&self, inputs: &Tensor) -> Result<Tensor> {
        let h = kernels::tanh(&self.hidden.forward(inputs)?)?;
        candle_nn::ops::log_softmax(&self.out.forward(&h)?, D::Minus1)
    }
}

/// Specialist policy networks (same shape, their own weights, named
/// `expertK.*`) and a gate over them that reads the window's last bar and
/// the account (where regime probabilities, when the features carry them,
/// are too).
pub struct MixturePolicy {
    experts: Vec<PolicyNet>,
    gate: GatingNet,
    window: usize,
}

/// One batch through every expert and the gate.
pub struct MixtureOutput {
    /// Each expert's own outputs, in expert order.
    pub experts: Vec<PolicyOutput>,
    /// `[B, K]`.
    pub log_gate: Tensor,
    /// Σ_k g_k V_k, `[B]`.
    pub value: Tensor,
}

impl MixturePolicy {
    /// `experts` policy networks of shape `cfg` (scoped `expert0`, ...) and a
    /// gate named `gate` with `gate_hidden` units; fails for zero experts.
    pub fn new(p: &mut Params, cfg: PolicyConfig, experts: usize, gate_hidden: usize) -> Result<MixturePolicy> {
        if experts == 0 {
            candle_core::bail!("a mixture needs at least one expert");
        }
        let nets = (0..experts)
            .map(|k| p.scoped(&format!("expert{k}"), |p| PolicyNet::new(p, cfg.clone())))
            .collect::<Result<Vec<_>>>()?;
        let gate = GatingNet::new(p, "gate", cfg.features + cfg.account, gate_hidden, experts)?;
        Ok(MixturePolicy {
            experts: nets,
            gate,
            window: cfg.window,
        })
    }

    /// Number of experts K.
    pub fn experts(&self) -> usize {
        self.experts.len()
    }

    /// Inputs as [`PolicyNet::forward`] takes them.
    pub fn forward(
        &self,
        window: &Tensor,
        account: &Tensor,
        instrument: &Tensor,
        timeframe: &Tensor,
    ) -> Result<MixtureOutput> {
        let experts = self
            .experts
            .iter()
            .map(|e| e.forward(window, account, instrument, timeframe))
            .collect::<Result<Vec<_>>>()?;
        let last = window.narrow(1, self.window - 1, 1)?.squeeze(1)?;
        let gate_in = Tensor::cat(&[&last, &account.to_dtype(last.dtype())?], 1)?;
        let log_gate = self.gate.forward(&gate_in)?;
        let values = Tensor::stack(&experts.iter().map(|o| &o.value).collect::<Vec<_>>(), 1)?;
        let value = mixture_mean(&log_gate, &values)?;
        Ok(MixtureOutput {
            experts,
            log_gate,
            value,
        })
    }

    /// Each expert's log-probability of the taken actions (type, and the
    /// quantity where `entries` is 1), `[B, K]`.
    pub fn expert_log_probs(
        out: &MixtureOutput,
        mask: &Tensor,
        actions: &Tensor,
        quantities: &Tensor,
        entries: &Tensor,
    ) -> Result<Tensor> {
        let per = out
            .experts
            .iter()
            .map(|o| {
                let lp = masked_log_probs(&o.logits, mask)?
                    .gather(&actions.unsqueeze(1)?, 1)?
                    .squeeze(1)?;
                let q = Beta::from_raw(&o.raw_alpha, &o.raw_beta)?.log_prob(quantities)?;
                lp + (q * entries)?
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&per, 1)
    }

    /// The mixture's log-probability of the taken actions, `[B]` (PPO's
    /// ratio uses it).
    pub fn log_prob(
        out: &MixtureOutput,
        mask: &Tensor,
        actions: &Tensor,
        quantities: &Tensor,
        entries: &Tensor,
    ) -> Result<Tensor> {
        mixture_log_prob(
            &out.log_gate,
            &Self::expert_log_probs(out, mask, actions, quantities, entries)?,
        )
    }
}

/// log Σ_k g_k π_k(a): `log_gate, expert_log_probs: [B, K]` → `[B]`.
pub fn mixture_log_prob(log_gate: &Tensor, expert_log_probs: &Tensor) -> Result<Tensor> {
    (log_gate + expert_log_probs)?.log_sum_exp(D::Minus1)
}

/// Σ_k g_k x_k: `log_gate, x: [B, K]` → `[B]` (values, expected quantities).
pub fn mixture_mean(log_gate: &Tensor, x: &Tensor) -> Result<Tensor> {
    (log_gate.exp()? * x)?.sum(D::Minus1)
}

/// The gate's entropy H(g), `[B]`.
pub fn gate_entropy(log_gate: &Tensor) -> Result<Tensor> {
    (log_gate.exp()? * log_gate)?.sum(D::Minus1)?.neg()
}

/// 1 − H(g)/log K: 1 when one expert carries all the weight, 0 when the
/// gate cannot tell them apart (the quantity's optional scale).
pub fn gate_confidence(log_gate: &Tensor) -> Result<Tensor> {
    let k = log_gate.dim(D::Minus1)? as f64;
    if k <= 1.0 {
        return log_gate.ones_like()?.sum(D::Minus1);
    }
    (1.0 - (gate_entropy(log_gate)? / k.ln())?)?.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};

    fn t(v: &[&[f32]]) -> Tensor {
        let rows = v.len();
        let cols = v[0].len();
        Tensor::from_vec(v.concat(), (rows, cols), &Device::Cpu).unwrap()
    }

    #[test]
    fn mixture_log_prob_is_the_log_of_the_weighted_sum() {
        let g = [[0.2f32, 0.5, 0.3], [0.9, 0.05, 0.05]];
        let pi = [[0.1f32, 0.6, 0.9], [0.25, 0.5, 0.75]];
        let log_g = t(&[&g[0].map(f32::ln), &g[1].map(f32::ln)]);
        let log_pi = t(&[&pi[0].map(f32::ln), &pi[1].map(f32::ln)]);
        let got = mixture_log_prob(&log_g, &log_pi).unwrap().to_vec1::<f32>().unwrap();
        for b in 0..2 {
            let want: f32 = (0..3).map(|k| g[b][k] * pi[b][k]).sum::<f32>().ln();
            assert!((got[b] - want).abs() < 1e-6, "{b}: {} vs {want}", got[b]);
        }
        // A one-hot gate is that expert's policy; log-space stays finite
        // where a product of tiny probabilities would underflow.
        let one_hot = t(&[&[0.0, -1e9, -1e9]]);
        let tiny = t(&[&[-200.0, -1.0, -2.0]]);
        assert!((mixture_log_prob(&one_hot, &tiny).unwrap().to_vec1::<f32>().unwrap()[0] + 200.0).abs() < 1e-3);
        let values = t(&[&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]]);
        let v = mixture_mean(&log_g, &values).unwrap().to_vec1::<f32>().unwrap();
        assert!((v[0] - (0.2 + 1.0 + 0.9)).abs() < 1e-6 && (v[1] - (0.9 + 0.1 + 0.15)).abs() < 1e-6);
    }

    #[test]
    fn the_mixture_policy_is_the_weighted_sum_of_its_experts() {
        use crate::policy::EncoderKind;
        let cfg = PolicyConfig {
            encoder: EncoderKind::Lstm,
            features: 5,
            window: 6,
            account: 3,
            hidden: 8,
            heads: 2,
            layers: 1,
            instruments: 2,
            timeframes: 1,
        };
        let d = Device::Cpu;
        let mut p = Params::new(11, d.clone());
        let m = MixturePolicy::new(&mut p, cfg, 4, 16).unwrap();
        let names: Vec<String> = p.named_vars().into_iter().map(|(n, _)| n).collect();
        for k in 0..4 {
            assert!(
                names.iter().any(|n| n.starts_with(&format!("expert{k}.trunk"))),
                "{names:?}"
            );
        }
        assert!(names.iter().any(|n| n.starts_with("gate.")));
        let b = 3;
        let window = Tensor::randn(0f32, 1.0, (b, 6, 5), &d).unwrap();
        let account = Tensor::randn(0f32, 1.0, (b, 3), &d).unwrap();
        let ids = Tensor::new(&[0u32, 1, 0], &d).unwrap();
        let tf = Tensor::new(&[0u32; 3], &d).unwrap();
        let out = m.forward(&window, &account, &ids, &tf).unwrap();
        let mask = Tensor::ones((b, 5), DType::F32, &d).unwrap();
        let actions = Tensor::new(&[0u32, 2, 4], &d).unwrap();
        let q = Tensor::new(&[0.3f32, 0.5, 0.9], &d).unwrap();
        let entries = Tensor::new(&[1f32, 0.0, 1.0], &d).unwrap();
        let lp = MixturePolicy::log_prob(&out, &mask, &actions, &q, &entries).unwrap();
        // By hand: log Σ_k g_k exp(lp_k).
        let g = out.log_gate.exp().unwrap().to_vec2::<f32>().unwrap();
        let per = MixturePolicy::expert_log_probs(&out, &mask, &actions, &q, &entries)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let got = lp.to_vec1::<f32>().unwrap();
        for i in 0..b {
            let want = (0..4).map(|k| g[i][k] * per[i][k].exp()).sum::<f32>().ln();
            assert!((got[i] - want).abs() < 1e-5, "{i}: {} vs {want}", got[i]);
        }
        let v = out.value.to_vec1::<f32>().unwrap();
        for i in 0..b {
            let want: f32 = (0..4)
                .map(|k| g[i][k] * out.experts[k].value.to_vec1::<f32>().unwrap()[i])
                .sum();
            assert!((v[i] - want).abs() < 1e-5);
        }
        // One backward pass of a PPO-like loss reaches every expert and the gate.
        let loss = (lp.mean_all().unwrap().neg().unwrap() + out.value.sqr().unwrap().mean_all().unwrap()).unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in p.named_vars() {
            let reached = grads.get(var.as_tensor()).is_some();
            // Embeddings of unused ids get zero rows, still a gradient entry.
            assert!(reached, "no gradient for {name}");
        }
    }

    #[test]
    fn confidence_runs_from_uniform_to_one_hot() {
        let k = 4f32;
        let uniform = t(&[&[(1.0 / k).ln(); 4]]);
        assert!(gate_confidence(&uniform).unwrap().to_vec1::<f32>().unwrap()[0].abs() < 1e-6);
        assert!((gate_entropy(&uniform).unwrap().to_vec1::<f32>().unwrap()[0] - k.ln()).abs() < 1e-6);
        let sure = t(&[&[0.0, -60.0, -60.0, -60.0]]);
        assert!((gate_confidence(&sure).unwrap().to_vec1::<f32>().unwrap()[0] - 1.0).abs() < 1e-5);
    }

    #[test]
    fn the_gate_starts_near_uniform_and_learns_from_the_mixture_loss() {
        let mut p = Params::new(7, Device::Cpu);
        let gate = GatingNet::new(&mut p, "gate", 6, 16, 4).unwrap();
        let x = Tensor::randn(0f32, 1.0, (8, 6), &Device::Cpu).unwrap();
        let log_g = gate.forward(&x).unwrap();
        let g = log_g.exp().unwrap().to_vec2::<f32>().unwrap();
        for row in &g {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row.iter().all(|w| (w - 0.25).abs() < 0.05), "{row:?}");
        }
        // Expert 2 explains every action best: gradient descent on the
        // mixture's negative log-likelihood moves weight onto it, and the
        // experts' own log-probabilities get gradients too.
        let expert_logits = Var::from_tensor(&Tensor::zeros((8, 4), DType::F32, &Device::Cpu).unwrap()).unwrap();
        let bias = Tensor::new(&[[-3f32, -3.0, -0.1, -3.0]], &Device::Cpu).unwrap();
        let vars = p.vars();
        for _ in 0..200 {
            let log_pi = expert_logits.as_tensor().broadcast_add(&bias).unwrap();
            let loss = mixture_log_prob(&gate.forward(&x).unwrap(), &log_pi)
                .unwrap()
                .mean_all()
                .unwrap()
                .neg()
                .unwrap();
            let grads = loss.backward().unwrap();
            assert!(grads.get(expert_logits.as_tensor()).is_some());
            for v in &vars {
                let gv = grads.get(v.as_tensor()).expect("every gate parameter gets a gradient");
                v.set(&(v.as_tensor() - (gv * 0.5).unwrap()).unwrap()).unwrap();
            }
        }
        let g = gate.forward(&x).unwrap().exp().unwrap().to_vec2::<f32>().unwrap();
        assert!(g.iter().all(|row| row[2] > 0.8), "{g:?}");
    }
}
