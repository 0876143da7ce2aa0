//! The HRM's account of one decision: the segments greedy acting ran with
//! their halting values, and integrated gradients of the action's
//! log-probability through exactly that many segments, unrolled whole (the
//! number of segments is held at the decision's, since halting is a step
//! function of the input that has no gradient).

use candle_core::Tensor;
use tradelab_core::Action;
use tradelab_nn::heads::masked_log_probs;
use tradelab_nn::hrm::infer::HrmInference;

use super::halting::should_halt;
use super::HrmAgent;
use crate::agent::AgentInput;
use crate::attribution::{integrated_gradients, Point};
use crate::error::AgentError;
use crate::explanation::{Attribution, Internals, SegmentView};
use crate::inputs::check_inputs;

impl HrmAgent {
    /// The segments greedy acting runs for `input`, up to the one that halts.
    fn halting_trace(&mut self, input: &AgentInput<'_>) -> Result<Vec<SegmentView>, AgentError> {
        check_inputs(self.config.input_shape(), input.window, &input.account, &[input.market])?;
        if self.inference.is_none() {
            self.inference = Some(HrmInference::from_net(&self.net)?);
        }
        let m = self.config.model.clone();
        let min = m.min_segments.clamp(1, m.max_segments.max(1));
        let inference = self.inference.as_mut().expect("snapshot taken above");
        let x = inference.embed(
            input.window,
            &input.account,
            &[input.market.instrument],
            &[input.market.timeframe],
        );
        let (mut z_h, mut z_l) = inference.initial(1);
        let mut trace = Vec::with_capacity(m.max_segments);
        for seg in 1..=m.max_segments {
            let out = inference.segment(&mut z_h, &mut z_l, &x, 1);
            trace.push(SegmentView {
                q_halt: out.q_halt[0],
                q_continue: out.q_continue[0],
            });
            if should_halt(seg, out.q_halt[0], out.q_continue[0], min, m.max_segments, m.act) {
                break;
            }
        }
        Ok(trace)
    }

    pub(super) fn decision_internals(&mut self, input: &AgentInput<'_>) -> Result<Internals, AgentError> {
        Ok(Internals {
            specialists: Vec::new(),
            segments: self.halting_trace(input)?,
        })
    }

    pub(super) fn attribute_decision(
        &mut self,
        input: &AgentInput<'_>,
        action: Action,
        steps: usize,
    ) -> Result<Attribution, AgentError> {
        let segments = self.halting_trace(input)?.len();
        let mask = input.mask.map(|m| if m { 1.0f32 } else { 0.0 });
        let a = action.index();
        let d = self.device.clone();
        let point = Point {
            window: input.window,
            account: &input.account,
            bars: self.config.window,
            features: self.config.features,
        };
        let net = &self.net;
        integrated_gradients(&point, action, steps, &d, |window, account, n| {
            let inst = Tensor::from_vec(vec![input.market.instrument; n], n, &d)?;
            let tf = Tensor::from_vec(vec![input.market.timeframe; n], n, &d)?;
            let mask = Tensor::from_vec(mask.repeat(n), (n, 5), &d)?;
            let x = net.embed(window, account, &inst, &tf)?;
            let out = net.unrolled(&x, segments)?;
            masked_log_probs(&out.logits, &mask)?.narrow(1, a, 1)?.squeeze(1)
        })
    }
}
