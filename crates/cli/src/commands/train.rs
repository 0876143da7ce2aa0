//! `tradelab train`: trains an agent with a one-line live progress display.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tradelab_agents::agent::Agent;
use tradelab_agents::ppo::{PpoAgent, PpoConfig};
use tradelab_agents::trainer::{train, Event, Progress, TrainPlan};
use tradelab_nn::policy::EncoderKind;

use super::markets::{data_hash, load_series, markets, vocabulary};
use crate::cli::{GlobalArgs, TrainArgs};
use crate::context::load_settings;

pub const AGENTS: [&str; 3] = ["ppo-lstm", "ppo-transformer", "ppo-mlp"];

pub fn encoder_of(agent: &str) -> Result<EncoderKind> {
    match agent {
        "ppo-lstm" => Ok(EncoderKind::Lstm),
        "ppo-transformer" => Ok(EncoderKind::Transformer),
        "ppo-mlp" => Ok(EncoderKind::Mlp),
        other => bail!("unknown agent `{other}`; choose one of: {}", AGENTS.join(", ")),
    }
}

pub fn run(g: &GlobalArgs, a: &TrainArgs) -> Result<()> {
    let mut extra = Vec::new();
    if let Some(steps) = a.steps {
        extra.push(format!("ppo.total_steps={steps}"));
    }
    let settings = load_settings(g, &extra)?;
    let encoder = encoder_of(&a.agent)?;
    let series = load_series(&settings, &a.symbols, a.timeframe.as_deref(), g.verbose)?;
    let vocab = vocabulary(&series);
    let hashes: Vec<_> = series.iter().map(data_hash).collect();
    let markets = markets(series, &vocab, &settings)?;
    let features = markets[0].data.feature_names.clone();

    let mut agent = match &a.resume {
        Some(dir) => {
            let mut agent = PpoAgent::load(dir).with_context(|| format!("resuming from {}", dir.display()))?;
            if agent.kind() != a.agent {
                bail!(
                    "{} holds a `{}` model but --agent is `{}`; pass --agent {} to resume it",
                    dir.display(),
                    agent.kind(),
                    a.agent,
                    agent.kind()
                );
            }
            if agent.provenance.vocabulary != vocab || agent.config.features != features.len() {
                bail!(
                    "the data differs from the checkpoint's: it was trained on {:?} ({} features), this run has {:?} ({} features); resume with the same --symbol/--timeframe",
                    agent.provenance.vocabulary.instruments,
                    agent.config.features,
                    vocab.instruments,
                    features.len()
                );
            }
            // The budget may be extended on resume; everything else is the checkpoint's.
            agent.config.ppo.total_steps = settings.ppo.total_steps;
            agent
        }
        None => {
            let mut agent = PpoAgent::new(PpoConfig {
                encoder: encoder.name().to_string(),
                features: features.len(),
                window: settings.env.window,
                instruments: vocab.instruments.len(),
                timeframes: vocab.timeframes.len(),
                seed: settings.seed,
                ppo: settings.ppo.clone(),
            })?;
            agent.provenance.vocabulary = vocab.clone();
            agent.provenance.features = features.clone();
            agent.provenance.settings = serde_json::to_value(&settings)?;
            agent.provenance.data = hashes;
            agent
        }
    };
    let run_dir = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", a.agent, settings.seed)));
    let plan = TrainPlan {
        run_dir: run_dir.clone(),
        total_steps: settings.ppo.total_steps,
        eval_every: settings.ppo.eval_every,
        patience: settings.ppo.patience,
        seed: settings.seed,
    };
    eprintln!(
        "training {} ({} parameters) on {} market(s) [{}], {} steps, seed {} -> {}",
        a.agent,
        agent.parameter_count(),
        markets.len(),
        vocab.instruments.join(", "),
        plan.total_steps,
        settings.seed,
        run_dir.display()
    );
    let mut display = ProgressDisplay::new(g.verbose);
    let summary = train(&mut agent, &markets, &settings, &plan, |e| display.event(e))?;
    display.finish();
    eprintln!(
        "done: {} updates, {} steps in {:.1}s{}",
        summary.updates,
        summary.env_steps,
        summary.seconds,
        if summary.stopped_early {
            " (stopped early: validation stopped improving)"
        } else {
            ""
        }
    );
    if let Some(ma) = summary.return_moving_average {
        eprintln!("training episode return (mean of last 100): {ma:+.3}");
    }
    if let Some(b) = &summary.best {
        eprintln!(
            "best validation return: {:+.2}% ({} trades) at update {}",
            b.return_pct, b.trades, b.at_update
        );
    }
    println!(
        "best model: {}\nlast model: {}",
        summary.best_dir.display(),
        summary.last_dir.display()
    );
    Ok(())
}

/// The same-line progress display: redrawn in place on a terminal, a line
/// per tenth of the budget otherwise, a line per update with `-v`.
struct ProgressDisplay {
    verbose: bool,
    terminal: bool,
    last_decile: usize,
    drawn: bool,
}

impl ProgressDisplay {
    fn new(verbose: bool) -> Self {
        ProgressDisplay {
            verbose,
            terminal: std::io::stderr().is_terminal(),
            last_decile: 0,
            drawn: false,
        }
    }

    fn line(p: &Progress<'_>) -> String {
        let pct = 100.0 * p.env_steps as f64 / p.total_steps.max(1) as f64;
        let opt = |x: Option<f64>| x.map_or("    -".to_string(), |v| format!("{v:+.2}"));
        let eta = p.eta_seconds.round() as u64;
        format!(
            "[{pct:5.1}%] step {}/{} | ep {} | avg100 {} | pi {:+.4} v {:.4} H {:.3} kl {:.4} clip {:.2} ev {:+.2} | {:.0} steps/s | ETA {}:{:02}",
            p.env_steps,
            p.total_steps,
            opt(p.last_episode_return),
            opt(p.return_moving_average),
            p.stats.policy_loss,
            p.stats.value_loss,
            p.stats.entropy,
            p.stats.approx_kl,
            p.stats.clip_fraction,
            p.stats.explained_variance,
            p.steps_per_second,
            eta / 60,
            eta % 60
        )
    }

    fn event(&mut self, e: Event<'_>) {
        let mut err = std::io::stderr().lock();
        match e {
            Event::Update(p) => {
                let line = Self::line(&p);
                if self.verbose {
                    let _ = writeln!(err, "{line}");
                } else if self.terminal {
                    let _ = write!(err, "\r\x1b[2K{line}");
                    self.drawn = true;
                } else {
                    let decile = 10 * p.env_steps / p.total_steps.max(1);
                    if decile > self.last_decile {
                        self.last_decile = decile;
                        let _ = writeln!(err, "{line}");
                    }
                }
            }
            Event::Validation { metrics, improved } => {
                if self.verbose || self.terminal {
                    if self.drawn {
                        let _ = write!(err, "\r\x1b[2K");
                    }
                    let _ = writeln!(
                        err,
                        "validation at update {}: {:+.2}% ({} trades){}",
                        metrics.at_update,
                        metrics.return_pct,
                        metrics.trades,
                        if improved { "  new best" } else { "" }
                    );
                }
            }
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
