//! Opening a checkpoint of any kind: the one place that maps the kind a
//! `metadata.json` names to the algorithm that loads it.

use std::path::Path;

use crate::agent::Agent;
use crate::checkpoint::read_model_kind;
use crate::error::AgentError;
use crate::kinds::AgentKind;

/// Opens any agent's checkpoint by the type its metadata.json names.
pub fn load_agent(dir: &Path) -> Result<Box<dyn Agent + Send>, AgentError> {
    let kind = read_model_kind(dir)?;
    match AgentKind::parse(&kind) {
        Some(AgentKind::Hrm) => Ok(Box::new(crate::hrm::HrmAgent::load(dir)?)),
        Some(AgentKind::LogReg) => Ok(Box::new(crate::logistic::LogisticAgent::load(dir)?)),
        Some(AgentKind::Gbt) => Ok(Box::new(crate::gbt::GbtAgent::load(dir)?)),
        Some(_) => Ok(Box::new(crate::ppo::PpoAgent::load(dir)?)),
        None => Err(AgentError::Mismatch(format!(
            "{} holds a `{kind}` model, which this build does not know; use the tradelab version that trained it",
            dir.display()
        ))),
    }
}
