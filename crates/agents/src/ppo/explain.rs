//! A PPO policy's, or a mixture's, account of one decision: integrated
//! gradients of the action's log-probability (the mixture's is
//! `log sum_k g_k pi_k(a)`, what its greedy decision maximises), and a
//! mixture's gate with each specialist's preferred action.

use candle_core::Tensor;
use tradelab_core::Action;
use tradelab_nn::heads::masked_log_probs;
use tradelab_nn::moe::mixture_log_prob;

use super::{Net, PpoAgent};
use crate::agent::AgentInput;
use crate::attribution::{integrated_gradients, Point};
use crate::error::AgentError;
use crate::explanation::{Attribution, Internals, SpecialistView};
use crate::sampling::argmax;

fn mask_row(input: &AgentInput<'_>) -> [f32; 5] {
    input.mask.map(|m| if m { 1.0 } else { 0.0 })
}

impl PpoAgent {
    pub(super) fn attribute_decision(
        &self,
        input: &AgentInput<'_>,
        action: Action,
        steps: usize,
    ) -> Result<Attribution, AgentError> {
        // Checks the window's shape and the market ids before any tensor is built.
        self.inputs(input.window, &input.account, &[input.market])?;
        let mask = mask_row(input);
        let a = action.index();
        let d = &self.device;
        let point = Point {
            window: input.window,
            account: &input.account,
            bars: self.config.window,
            features: self.config.features,
        };
        integrated_gradients(&point, action, steps, d, |window, account, n| {
            let inst = Tensor::from_vec(vec![input.market.instrument; n], n, d)?;
            let tf = Tensor::from_vec(vec![input.market.timeframe; n], n, d)?;
            let mask = Tensor::from_vec(mask.repeat(n), (n, 5), d)?;
            let chosen = |logits: &Tensor| masked_log_probs(logits, &mask)?.narrow(1, a, 1);
            match &self.net {
                Net::Single(net) => chosen(&net.forward(window, account, &inst, &tf)?.logits)?.squeeze(1),
                Net::Mixture(mix) => {
                    let out = mix.forward(window, account, &inst, &tf)?;
                    let per = out
                        .experts
                        .iter()
                        .map(|o| chosen(&o.logits))
                        .collect::<candle_core::Result<Vec<_>>>()?;
                    mixture_log_prob(&out.log_gate, &Tensor::cat(&per, 1)?)
                }
            }
        })
    }

    pub(super) fn decision_internals(&self, input: &AgentInput<'_>) -> Result<Internals, AgentError> {
        let Net::Mixture(mix) = &self.net else {
            return Ok(Internals::default());
        };
        let out = self.forward_mixture(mix, input.window, &input.account, &[input.market])?;
        let gate = out.log_gate.exp()?.to_vec2::<f32>()?.remove(0);
        let mask = Tensor::from_vec(mask_row(input).to_vec(), (1, 5), &self.device)?;
        let names = self.specialists();
        let mut specialists = Vec::with_capacity(out.experts.len());
        for (k, o) in out.experts.iter().enumerate() {
            let row = masked_log_probs(&o.logits, &mask)?.exp()?.to_vec2::<f32>()?.remove(0);
            let p: [f32; 5] = std::array::from_fn(|i| row[i]);
            let best = argmax(&p);
            specialists.push(SpecialistView {
                name: names.get(k).cloned().unwrap_or_else(|| format!("specialist {k}")),
                gate: gate[k],
                preferred: Action::from_index(best).unwrap_or(Action::Hold),
                probability: p[best],
            });
        }
        Ok(Internals {
            specialists,
            segments: Vec::new(),
        })
    }
}
