//! One PPO update: advantages, then `epochs` passes of minibatches split
//! by environment.

use candle_core::{DType, Tensor};
use tradelab_nn::heads::{categorical_entropy, masked_log_probs, Beta};

use tradelab_env::VecEnv;

use super::fused::{FusedActor, FusedMlp, Samples};
use super::{Net, PpoAgent};
use crate::agent::{LearnStats, MarketKey};
use crate::epochs::{learning_rate, ppo_update, FIGURES};
use crate::error::AgentError;
use crate::rollout::{collect, Batch, RolloutBuffer};

impl PpoAgent {
    pub(crate) fn update(&mut self, b: &RolloutBuffer) -> Result<LearnStats, AgentError> {
        let p = self.config.ppo.clone();
        let lr = learning_rate(p.learning_rate, p.anneal_lr, self.updates, self.config.total_updates());
        let (window, features, device) = (self.config.window, self.config.features, self.device.clone());
        let mut rng = self.rng.clone();
        let stats = ppo_update(
            b,
            &p,
            lr,
            &mut rng,
            |returns| b.batch(window, features, returns, &device),
            |batch, idx, adv| self.minibatch_step(batch, idx, adv, lr),
        )?;
        self.rng = rng;
        Ok(stats)
    }

    /// A rollout and an update of the MLP policy on the fused kernels,
    /// between copying the parameters out of candle and back.
    pub(super) fn learn_fused(
        &mut self,
        fused: &mut FusedMlp,
        buffer: &mut RolloutBuffer,
        envs: &mut VecEnv,
        markets: &[MarketKey],
    ) -> Result<(Vec<f64>, LearnStats), AgentError> {
        fused.pull(&self.adam)?;
        let normalize = self.config.ppo.normalize_rewards;
        let mut actor = FusedActor {
            net: fused,
            rng: &mut self.rng,
            scaler: normalize.then_some(&mut self.scaler),
        };
        let episodes = collect(&mut actor, buffer, envs, markets)?;
        let p = self.config.ppo.clone();
        let lr = learning_rate(p.learning_rate, p.anneal_lr, self.updates, self.config.total_updates());
        let mut rng = self.rng.clone();
        let (adam, buffer) = (&mut self.adam, &*buffer);
        let stats = ppo_update(
            buffer,
            &p,
            lr,
            &mut rng,
            |returns| Ok(returns.to_vec()),
            |returns, idx, adv| {
                let samples = Samples {
                    rollout: buffer,
                    returns,
                    idx,
                    advantages: &adv,
                };
                Ok(fused.minibatch(&samples, &p, lr, adam))
            },
        )?;
        self.rng = rng;
        fused.push(&mut self.adam)?;
        Ok((episodes, stats))
    }

    /// Loss, backward pass and Adam step on one minibatch. Returns policy
    /// loss, value loss, entropy, approx-KL, clip fraction and gradient norm.
    pub(super) fn minibatch_step(
        &mut self,
        batch: &Batch,
        idx: &[u32],
        adv: Vec<f32>,
        lr: f64,
    ) -> Result<[f64; FIGURES], AgentError> {
        let parts = self.minibatch_loss(batch, idx, adv)?;
        let grads = parts.loss.backward()?;
        let grad_norm = self.adam.step(&grads, lr, self.config.ppo.max_grad_norm)?;
        let clip = self.config.ppo.clip;
        let approx_kl = ((&parts.ratio - 1.0)? - &parts.log_ratio)?.mean_all()?;
        let clip_fraction = (&parts.ratio - 1.0)?
            .abs()?
            .gt(clip)?
            .to_dtype(DType::F32)?
            .mean_all()?;
        Ok([
            scalar(&parts.policy_loss)?,
            scalar(&parts.value_loss)?,
            scalar(&parts.entropy)?,
            scalar(&approx_kl)?,
            scalar(&clip_fraction)?,
            grad_norm,
            0.0,
        ])
    }

    /// The PPO loss on one minibatch (the single policy's or the mixture's).
    pub(super) fn minibatch_loss(&self, batch: &Batch, idx: &[u32], adv: Vec<f32>) -> Result<LossParts, AgentError> {
        let p = &self.config.ppo;
        let m = idx.len();
        let ix = Tensor::from_slice(idx, m, &self.device)?;
        let pick = |t: &Tensor| t.index_select(&ix, 0);
        let net = match &self.net {
            Net::Single(net) => net,
            Net::Mixture(_) => return self.mixture_loss(batch, idx, adv),
        };
        let out = net.forward(
            &pick(&batch.windows)?,
            &pick(&batch.accounts)?,
            &pick(&batch.instruments)?,
            &pick(&batch.timeframes)?,
        )?;
        let log_probs = masked_log_probs(&out.logits, &pick(&batch.masks)?)?;
        let actions = pick(&batch.actions)?.unsqueeze(1)?;
        let action_lp = log_probs.gather(&actions, 1)?.squeeze(1)?;
        let beta = Beta::from_raw(&out.raw_alpha, &out.raw_beta)?;
        let quantity_lp = beta.log_prob(&pick(&batch.quantities)?)?;
        let new_lp = (action_lp + (quantity_lp * pick(&batch.entries)?)?)?;
        let log_ratio = (new_lp - pick(&batch.old_log_probs)?)?;
        let ratio = log_ratio.exp()?;
        let adv = Tensor::from_vec(adv, m, &self.device)?;

        let policy_loss = clipped_surrogate(&ratio, &adv, p.clip)?.mean_all()?;
        let value_loss = ((out.value - pick(&batch.returns)?)?.sqr()?.mean_all()? * 0.5)?;
        let entropy = (categorical_entropy(&log_probs)? + beta.entropy()?)?.mean_all()?;
        let loss = ((&policy_loss + (&value_loss * p.value_coef)?)? - (&entropy * p.entropy_coef)?)?;
        Ok(LossParts {
            loss,
            policy_loss,
            value_loss,
            entropy,
            ratio,
            log_ratio,
        })
    }

    /// The loss's gradient on a whole batch, flattened in the order of
    /// [`PpoAgent::flat_params`], and the loss: what meta-learning's inner
    /// and outer loops step with. Nothing is updated.
    pub(crate) fn batch_gradient(&self, batch: &Batch, adv: Vec<f32>) -> Result<(Vec<f64>, f64), AgentError> {
        let idx: Vec<u32> = (0..adv.len() as u32).collect();
        let parts = self.minibatch_loss(batch, &idx, adv)?;
        let grads = parts.loss.backward()?;
        let mut flat = Vec::with_capacity(self.params.count());
        for (_, var) in self.params.named_vars() {
            match grads.get(var.as_tensor()) {
                Some(g) => flat.extend(g.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?),
                None => flat.extend(std::iter::repeat_n(0.0, var.as_tensor().elem_count())),
            }
        }
        Ok((flat, scalar(&parts.loss)?))
    }
}

/// A minibatch's loss and the pieces the progress line reports.
pub(super) struct LossParts {
    pub loss: Tensor,
    pub policy_loss: Tensor,
    pub value_loss: Tensor,
    pub entropy: Tensor,
    pub ratio: Tensor,
    pub log_ratio: Tensor,
}

/// PPO's clipped objective per sample, as a loss: max(−A r, −A clip(r)).
pub(super) fn clipped_surrogate(ratio: &Tensor, adv: &Tensor, clip: f64) -> candle_core::Result<Tensor> {
    let unclipped = (adv.neg()? * ratio)?;
    let clipped = (adv.neg()? * ratio.clamp(1.0 - clip, 1.0 + clip)?)?;
    unclipped.maximum(&clipped)
}

fn scalar(t: &Tensor) -> Result<f64, AgentError> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

impl PpoAgent {
    /// Seconds per PPO minibatch step (forward, backward, Adam) on the
    /// first minibatch of the last rollout, `repeats` times after one
    /// warm-up: the figure compared with PyTorch in BENCHMARKS.md. Call
    /// after at least one [`learn`](crate::Agent::learn).
    pub fn time_update_step(&mut self, repeats: usize) -> Result<Vec<f64>, AgentError> {
        let b = self
            .buffer
            .take()
            .ok_or_else(|| AgentError::Invalid("time_update_step needs a rollout: call learn first".into()))?;
        let (n, t) = (b.envs, b.steps);
        let batch = b.batch(self.config.window, self.config.features, &b.values, &self.device)?;
        let per = n / self.config.ppo.minibatches;
        let idx: Vec<u32> = (0..per).flat_map(|e| (0..t).map(move |s| (s * n + e) as u32)).collect();
        let adv: Vec<f32> = (0..idx.len()).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let mut times = Vec::with_capacity(repeats);
        for k in 0..=repeats {
            let start = std::time::Instant::now();
            self.minibatch_step(&batch, &idx, adv.clone(), 1e-5)?;
            if k > 0 {
                times.push(start.elapsed().as_secs_f64());
            }
        }
        self.buffer = Some(b);
        Ok(times)
    }
}
