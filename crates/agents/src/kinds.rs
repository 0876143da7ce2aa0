//! The one list of agent kinds: the names `tradelab train --agent` takes,
//! the `model` field of `metadata.json`, and which algorithm each belongs
//! to. Commands, job validation, checkpoint loading and meta-learning all
//! read it here, so adding a kind is one edit.

use tradelab_nn::policy::EncoderKind;

/// The Hierarchical Reasoning Model agent.
pub const HRM: &str = "hrm";
/// The mixture of experts: PPO specialists under a regime gate.
pub const MOE: &str = "moe";
/// The supervised baseline: logistic regression of the next bar's direction.
pub const LOGREG: &str = "logreg";
/// The supervised baseline: gradient-boosted trees of the next bar's direction.
pub const GBT: &str = "gbt";

/// Every kind of agent this build trains and loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// `ppo-lstm`: PPO over an LSTM encoder of the window.
    PpoLstm,
    /// `ppo-transformer`: PPO over a Transformer encoder of the window.
    PpoTransformer,
    /// `ppo-mlp`: PPO over a dense layer of the flattened window.
    PpoMlp,
    /// `hrm`: the Hierarchical Reasoning Model with Q-halting.
    Hrm,
    /// `moe`: PPO specialists under a regime gate.
    Moe,
    /// `logreg`: the supervised baseline, a regularised logistic
    /// regression of the next bar's direction.
    LogReg,
    /// `gbt`: the second supervised baseline, gradient-boosted trees on the
    /// same inputs and labels.
    Gbt,
}

impl AgentKind {
    /// In the order help texts list them.
    pub const ALL: [AgentKind; 7] = [
        AgentKind::PpoLstm,
        AgentKind::PpoTransformer,
        AgentKind::PpoMlp,
        AgentKind::Hrm,
        AgentKind::Moe,
        AgentKind::LogReg,
        AgentKind::Gbt,
    ];

    /// The name users type and checkpoints record.
    pub fn name(self) -> &'static str {
        match self {
            AgentKind::PpoLstm => "ppo-lstm",
            AgentKind::PpoTransformer => "ppo-transformer",
            AgentKind::PpoMlp => "ppo-mlp",
            AgentKind::Hrm => HRM,
            AgentKind::Moe => MOE,
            AgentKind::LogReg => LOGREG,
            AgentKind::Gbt => GBT,
        }
    }

    /// The kind a name denotes (as [`AgentKind::name`] spells it); `None`
    /// for a name this build does not know.
    pub fn parse(name: &str) -> Option<AgentKind> {
        AgentKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The single PPO policy's encoder (none for the HRM and the mixture).
    pub fn encoder(self) -> Option<EncoderKind> {
        match self {
            AgentKind::PpoLstm => Some(EncoderKind::Lstm),
            AgentKind::PpoTransformer => Some(EncoderKind::Transformer),
            AgentKind::PpoMlp => Some(EncoderKind::Mlp),
            AgentKind::Hrm | AgentKind::Moe | AgentKind::LogReg | AgentKind::Gbt => None,
        }
    }

    /// The single PPO policy over `encoder`.
    pub fn of_encoder(encoder: EncoderKind) -> AgentKind {
        match encoder {
            EncoderKind::Lstm => AgentKind::PpoLstm,
            EncoderKind::Transformer => AgentKind::PpoTransformer,
            EncoderKind::Mlp => AgentKind::PpoMlp,
        }
    }

    /// Trained and stored by PPO (`PpoAgent`): the single policies and the mixture.
    pub fn is_ppo(self) -> bool {
        !matches!(self, AgentKind::Hrm | AgentKind::LogReg | AgentKind::Gbt)
    }

    /// Fitted on labels rather than trained by reinforcement learning: the
    /// supervised baselines.
    pub fn is_supervised(self) -> bool {
        matches!(self, AgentKind::LogReg | AgentKind::Gbt)
    }
}

/// The names of the kinds `keep` accepts, comma-separated, for messages.
pub fn names(keep: impl Fn(AgentKind) -> bool) -> String {
    AgentKind::ALL
        .into_iter()
        .filter(|k| keep(*k))
        .map(AgentKind::name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for k in AgentKind::ALL {
            assert_eq!(AgentKind::parse(k.name()), Some(k));
        }
        assert_eq!(AgentKind::parse("dqn"), None);
        assert_eq!(
            names(|_| true),
            "ppo-lstm, ppo-transformer, ppo-mlp, hrm, moe, logreg, gbt"
        );
        assert_eq!(names(AgentKind::is_ppo), "ppo-lstm, ppo-transformer, ppo-mlp, moe");
    }

    #[test]
    fn encoders_and_single_policy_kinds_correspond() {
        for k in AgentKind::ALL {
            if let Some(e) = k.encoder() {
                assert_eq!(AgentKind::of_encoder(e), k);
            }
        }
    }
}
