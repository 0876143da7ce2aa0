//! `tradelab train`: trains an agent with a one-line live progress display.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use std::path::Path;

use serde_json::json;
use tradelab_agents::evaluate::greedy_returns;
use tradelab_agents::hindsight::LabelCosts;
use tradelab_agents::hrm::pretrain::training_labels;
use tradelab_agents::hrm::{HrmAgent, HrmConfig, KIND as HRM};
use tradelab_agents::kinds::{self, AgentKind};
use tradelab_agents::load::load_agent;
use tradelab_agents::metadata::ValidationMetrics;
use tradelab_agents::metadata::{DataHash, Provenance, Vocabulary};
use tradelab_agents::ppo::{PpoAgent, MOE_KIND};
use tradelab_agents::settings::hrm_preset;
use tradelab_agents::supervised::{fit_gbt, fit_logistic};
use tradelab_agents::trainer::{
    train, validate, Event, InstrumentDropout, Progress, Scoring, TrainPlan, Trainable, TrainingMarket,
};
use tradelab_agents::Agent;
use tradelab_app::Settings;
use tradelab_core::BarSeries;
use tradelab_env::{ActionSpace, Split, VecEnv};
use tradelab_regime::specialists::SPECIALISTS;
use tradelab_store::tracking::RunStatus;

use crate::cli::{GlobalArgs, TrainArgs};
use crate::context::load_settings;
use tradelab_app::data_sources::sourced_hash;
use tradelab_app::markets::{load_series_sourced, markets, normalisations, vocabulary};
use tradelab_app::record::Recorder;
use tradelab_app::training::ppo_config;

/// What every run needs, whichever agent trains.
struct RunData {
    settings: Settings,
    markets: Vec<TrainingMarket>,
    vocab: Vocabulary,
    features: Vec<String>,
    hashes: Vec<DataHash>,
}

pub fn run(g: &GlobalArgs, a: &TrainArgs) -> Result<()> {
    if a.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    if a.seeds > 1 {
        return super::seeds::run(g, a);
    }
    let mut extra = Vec::new();
    if let Some(steps) = a.steps {
        extra.push(format!("ppo.total_steps={steps}"));
    }
    if let Some(preset) = &a.preset {
        if a.agent != HRM {
            bail!("--preset sets the HRM's size; it does not apply to --agent {}", a.agent);
        }
        extra.extend(hrm_preset(preset)?.iter().map(|s| s.to_string()));
    }
    if a.agent == MOE_KIND {
        // The gate and the specialists' regime weighting read the regime columns.
        extra.push("regime.features=true".into());
    }
    let mut settings = load_settings(g, &extra)?;
    let Some(kind) = AgentKind::parse(&a.agent) else {
        bail!("unknown agent `{}`; choose one of: {}", a.agent, kinds::names(|_| true));
    };
    let ppo = kind.is_ppo();
    if !a.holdout.is_empty() {
        if !ppo {
            bail!("--holdout needs an agent with an unknown-instrument embedding: ppo-lstm, ppo-transformer, ppo-mlp or moe");
        }
        if settings.ppo.instrument_dropout == 0.0 {
            eprintln!("note: --holdout trains the unknown-instrument embedding: ppo.instrument_dropout=0.1");
            settings.ppo.instrument_dropout = 0.1;
        }
    }
    if !ppo && settings.ppo.instrument_dropout > 0.0 {
        bail!(
            "ppo.instrument_dropout gives PPO agents an unknown-instrument embedding; `{}` has none, so set it to 0",
            a.agent
        );
    }
    // Before any data is loaded: a store that cannot be opened is a setting to fix now.
    let recorder = Recorder::open(&settings)?;
    let mut sourced = load_series_sourced(&settings, &a.symbols, a.timeframe.as_deref(), g.verbose)?;
    for name in &a.holdout {
        let before = sourced.len();
        sourced.retain(|s| &s.series.instrument != name);
        if sourced.len() == before {
            bail!("--holdout {name}: no series of that instrument among the markets trained on; name one of them");
        }
    }
    if sourced.is_empty() {
        bail!("--holdout leaves no market to train on; train on several and hold out one");
    }
    // The files are recorded with their content hashes, so that evaluate
    // finds them again without --symbol, even after a move.
    let hashes = sourced.iter().map(sourced_hash).collect::<Result<Vec<_>>>()?;
    let series: Vec<BarSeries> = sourced.into_iter().map(|s| s.series).collect();
    let mut vocab = vocabulary(&series);
    vocab.unknown_instrument = ppo && settings.ppo.instrument_dropout > 0.0;

    if kind.is_supervised() {
        return train_supervised(a, kind, series, vocab, hashes, settings, recorder.as_ref());
    }
    if a.agent == HRM {
        let resumed = match &a.resume {
            Some(dir) => {
                let mut agent: HrmAgent = resume(dir, &a.agent)?;
                // The HRM's vocabulary grows: markets it knows keep their ids,
                // new ones are appended with neutral (zero) embeddings.
                let mut grown = agent.provenance.vocabulary.clone();
                for name in &vocab.instruments {
                    if !grown.instruments.contains(name) {
                        grown.instruments.push(name.clone());
                    }
                }
                for name in &vocab.timeframes {
                    if !grown.timeframes.contains(name) {
                        grown.timeframes.push(name.clone());
                    }
                }
                if grown != agent.provenance.vocabulary {
                    eprintln!(
                        "adding {:?} to the model's vocabulary {:?} (new markets start from a neutral embedding)",
                        grown.instruments[agent.provenance.vocabulary.instruments.len()..].to_vec(),
                        agent.provenance.vocabulary.instruments
                    );
                    agent.extend_vocabulary(grown.instruments.len(), grown.timeframes.len())?;
                    agent.provenance.vocabulary = grown.clone();
                }
                vocab = grown;
                Some(agent)
            }
            None => None,
        };
        let d = prepare(series, vocab, hashes, settings)?;
        let agent = match resumed {
            Some(agent) => agent,
            None => {
                let mut agent = HrmAgent::new(HrmConfig {
                    features: d.features.len(),
                    window: d.settings.env.window,
                    instruments: d.vocab.instruments.len(),
                    timeframes: d.vocab.timeframes.len(),
                    seed: d.settings.seed,
                    ppo: d.settings.ppo.clone(),
                    model: d.settings.hierarchical_reasoning_model.clone(),
                })?;
                pretrain(&mut agent, &d)?;
                agent
            }
        };
        return train_and_report(agent, a, d, g.verbose, recorder.as_ref()).map(|_| ());
    }
    let resumed = a
        .resume
        .as_deref()
        .map(|dir| resume::<PpoAgent>(dir, &a.agent))
        .transpose()?;
    let d = prepare(series, vocab, hashes, settings)?;
    let agent = match resumed {
        Some(agent) => agent,
        None => PpoAgent::new(ppo_config(&a.agent, &d.features, &d.vocab, &d.settings)?)?,
    };
    let markets = d.markets.clone();
    let settings = d.settings.clone();
    let best = train_and_report(agent, a, d, g.verbose, recorder.as_ref())?;
    if a.agent == MOE_KIND {
        report_specialists(&best, &markets, &settings)?;
    }
    Ok(())
}

/// The mixture's parts: which specialists the gate weighs in which regime
/// (over the last rollout), and each specialist's own validation return
/// when it trades alone.
fn report_specialists(best: &Path, markets: &[TrainingMarket], settings: &Settings) -> Result<()> {
    let mut agent = PpoAgent::load(best)?;
    let names = agent.specialists();
    let updates = agent.updates;
    let row = |cells: Vec<String>| cells.iter().map(|c| format!("{c:>15}")).collect::<String>();
    if let Some(stats) = &agent.provenance.train {
        eprintln!("gate weight by regime (last rollout; regimes calmest first):");
        eprintln!("  {:<8}{}", "regime", row(names.clone()));
        for (r, w) in stats.gate_by_regime.iter().enumerate().filter(|(_, w)| !w.is_empty()) {
            eprintln!(
                "  {:<8}{}",
                format!("p{r}"),
                row(w.iter().map(|x| format!("{x:.3}")).collect())
            );
        }
        let all = stats.gate_weights.iter().map(|x| format!("{x:.3}")).collect();
        eprintln!("  {:<8}{}", "all", row(all));
    }
    eprintln!("validation of each specialist alone (best model):");
    let scoring = Scoring::from_settings(&settings.ppo);
    for (k, name) in names.iter().enumerate() {
        agent.force_expert(Some(k))?;
        let m = validate(&mut agent, markets, &settings.env_config(), scoring, updates)?;
        eprintln!("  {name:<15} {}", validation_line(&m));
    }
    agent.force_expert(None)?;
    let m = validate(&mut agent, markets, &settings.env_config(), scoring, updates)?;
    eprintln!("  {:<15} {}", "mixture", validation_line(&m));
    Ok(())
}

fn prepare(series: Vec<BarSeries>, vocab: Vocabulary, hashes: Vec<DataHash>, settings: Settings) -> Result<RunData> {
    let markets = markets(series, &vocab, &settings)?;
    let features = markets[0].data.feature_names.clone();
    Ok(RunData {
        settings,
        markets,
        vocab,
        features,
        hashes,
    })
}

/// Supervised pre-training on hindsight-optimal labels of the training
/// splits, `pretrain_epochs` teacher-driven rollouts, one line each.
fn pretrain(agent: &mut HrmAgent, d: &RunData) -> Result<()> {
    let epochs = d.settings.hierarchical_reasoning_model.pretrain_epochs;
    if epochs == 0 {
        return Ok(());
    }
    if d.settings.env.actions == ActionSpace::Exposure {
        bail!("hierarchical_reasoning_model.pretrain_epochs teaches the seed's actions from hindsight labels, which an env.actions=exposure model does not choose; set pretrain_epochs to 0 or env.actions to trade or target");
    }
    let data: Vec<_> = d.markets.iter().map(|m| m.data.clone()).collect();
    let keys: Vec<_> = d.markets.iter().map(|m| m.key).collect();
    let labels = training_labels(&data, LabelCosts::new(&d.settings.backtest, &d.settings.risk));
    let mut envs = VecEnv::new(
        &data,
        d.settings.ppo.envs,
        Split::Train,
        &d.settings.env_config(),
        d.settings.seed ^ 0x5EED,
    )?;
    for epoch in 0..epochs {
        let s = agent.pretrain_epoch(&mut envs, &keys, &labels, epoch)?;
        eprintln!(
            "pretrain {}/{epochs}: cross-entropy {:.4}, accuracy {:.1}% (deepest segment), halting loss {:.3}",
            epoch + 1,
            s.cross_entropy,
            100.0 * s.accuracy,
            s.halt_loss
        );
    }
    Ok(())
}

/// Loads a checkpoint to continue, refusing another agent type.
fn resume<A: Trainable>(dir: &Path, wanted: &str) -> Result<A> {
    let agent = A::load(dir).with_context(|| format!("resuming from {}", dir.display()))?;
    if agent.kind() != wanted {
        bail!(
            "{} holds a `{}` model but --agent is `{wanted}`; pass --agent {} to resume it",
            dir.display(),
            agent.kind(),
            agent.kind()
        );
    }
    Ok(agent)
}

fn train_and_report<A: Trainable>(
    mut agent: A,
    a: &TrainArgs,
    d: RunData,
    verbose: bool,
    recorder: Option<&Recorder>,
) -> Result<PathBuf> {
    let settings = &d.settings;
    // The budget is a total: on resume it counts the steps already done,
    // and --more-steps adds to them. One already reached is refused rather
    // than silently training nothing.
    let done = agent.env_steps_done();
    let total_steps = match a.more_steps {
        Some(more) => done.saturating_add(more),
        None => settings.ppo.total_steps,
    };
    if a.resume.is_some() {
        if total_steps <= done {
            bail!(
                "the checkpoint has already done {done} steps and the budget is {total_steps} in all (--steps and ppo.total_steps count from the start); add --more-steps N to train N more"
            );
        }
        eprintln!(
            "resuming at step {done} (update {}), training to step {total_steps}",
            agent.updates_done()
        );
        let p = agent.provenance();
        if p.vocabulary != d.vocab || p.features != d.features {
            bail!(
                "the data differs from the checkpoint's: it was trained on {:?} ({} features), this run has {:?} ({} features); resume with the same --symbol/--timeframe",
                p.vocabulary.instruments,
                p.features.len(),
                d.vocab.instruments,
                d.features.len()
            );
        }
        agent.set_total_steps(total_steps);
    } else {
        let p = agent.provenance_mut();
        p.vocabulary = d.vocab.clone();
        p.features = d.features.clone();
        p.settings = serde_json::to_value(settings)?;
        p.data = d.hashes.clone();
        p.normalisation = normalisations(&d.markets);
    }
    let run_dir = run_dir(a, recorder, settings.seed);
    let plan = TrainPlan {
        run_dir: run_dir.clone(),
        total_steps,
        eval_every: settings.ppo.eval_every,
        patience: settings.ppo.patience,
        seed: settings.seed,
        scoring: Scoring::from_settings(&settings.ppo),
        instrument_dropout: d.vocab.unknown_instrument.then_some(InstrumentDropout {
            rate: settings.ppo.instrument_dropout,
            unknown: d.vocab.instruments.len() as u32,
        }),
        checkpoint_every: settings.ppo.checkpoint_every,
        // Ctrl-C or SIGTERM (a cancelled job) stops after the update in
        // progress and saves last/; a second one quits at once.
        interrupt: Some(crate::interrupt::install(
            "\ninterrupted: finishing the update in progress and saving last/ (Ctrl-C again to quit at once)\n",
        )),
    };
    eprintln!(
        "training {} ({} parameters) on {} market(s) [{}], {} steps, seed {} -> {}",
        a.agent,
        agent.parameter_count(),
        d.markets.len(),
        d.vocab.instruments.join(", "),
        plan.total_steps,
        settings.seed,
        run_dir.display()
    );
    // `ep` and `avg100` below are in the reward's units, not in percent.
    eprintln!("reward units: {}", settings.env.reward_units());
    let run = match recorder {
        Some(r) => Some(r.start_run(
            &format!("train {}", a.agent),
            &json!({
                "agent": a.agent,
                "instruments": d.vocab.instruments,
                "timeframes": d.vocab.timeframes,
                "total_steps": plan.total_steps,
                "seed": settings.seed,
                "run_dir": run_dir.display().to_string(),
                "resumed_from": a.resume.as_ref().map(|p| p.display().to_string()),
                "holdout": a.holdout,
                "settings": settings,
            }),
            &json!({"kind": "train", "agent": a.agent}),
        )?),
        None => None,
    };
    let mut display = ProgressDisplay::new(verbose);
    let mut last_step = 0;
    let outcome = train(&mut agent, &d.markets, &settings.env_config(), &plan, |e| {
        if let (Some(r), Some(run)) = (recorder, run.as_deref()) {
            record_event(r, run, &e, &mut last_step);
        }
        display.event(e)
    });
    display.finish();
    let summary = match outcome {
        Ok(s) => s,
        Err(e) => {
            if let (Some(r), Some(run)) = (recorder, run.as_deref()) {
                let _ = r.finish_run(run, RunStatus::Failed);
            }
            return Err(e.into());
        }
    };
    if summary.interrupted {
        if let (Some(r), Some(run)) = (recorder, run.as_deref()) {
            r.finish_run(run, RunStatus::Killed)?;
        }
        let symbols: String = a.symbols.iter().map(|s| format!(" --symbol {s}")).collect();
        eprintln!(
            "interrupted at step {} of {}: the latest state is saved in {} (nothing registered)\nresume with: tradelab train --agent {}{symbols} --resume {}",
            summary.env_steps,
            plan.total_steps,
            summary.last_dir.display(),
            a.agent,
            summary.last_dir.display()
        );
        std::process::exit(crate::interrupt::INTERRUPTED_EXIT);
    }
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
        eprintln!("best validation: {} at update {}", validation_line(b), b.at_update);
        if let Some(warning) = b.warning() {
            eprintln!("warning: {warning}; see BENCHMARKS.md on agents that do not trade");
        }
    }
    println!(
        "best model: {}\nlast model: {}",
        summary.best_dir.display(),
        summary.last_dir.display()
    );
    for h in &a.holdout {
        println!(
            "held out {h}: evaluate it unseen with: tradelab evaluate --model {} --symbol {h}",
            summary.best_dir.display()
        );
    }
    if let (Some(r), Some(run)) = (recorder, run.as_deref()) {
        let name = a.name.as_deref().unwrap_or(&a.agent);
        let (version, dir) = r.register_checkpoint(name, &summary.best_dir, Some(run))?;
        r.finish_run(run, RunStatus::Finished)?;
        r.job_progress(
            &json!({
                "phase": "done",
                "run_id": run,
                "step": summary.env_steps,
                "total_steps": plan.total_steps,
                "percent": 100.0,
                "updates": summary.updates,
                "stopped_early": summary.stopped_early,
                "seconds": summary.seconds,
            }),
            true,
        );
        let registered = Registered {
            run,
            name,
            version,
            dir: &dir,
        };
        report_job_result(
            r,
            &registered,
            summary.best.as_ref(),
            &summary.best_dir,
            &d.markets,
            settings,
        )?;
        println!("registered: {name} version {version} ({}), run {run}", dir.display());
        if let Some(w) = summary.best.as_ref().and_then(|b| b.warning()) {
            // Registered all the same (it is the best found), but said.
            println!("note: {name} version {version} does not trade: {w}");
        }
    }
    Ok(summary.best_dir)
}

/// `train --agent logreg|gbt`: fits a supervised baseline (its strength or
/// size chosen on validation), saves it as `RUN/best`, records and
/// registers it like any model.
fn train_supervised(
    a: &TrainArgs,
    kind: AgentKind,
    series: Vec<BarSeries>,
    vocab: Vocabulary,
    hashes: Vec<DataHash>,
    mut settings: Settings,
    recorder: Option<&Recorder>,
) -> Result<()> {
    let name = kind.name();
    if a.resume.is_some() {
        bail!("a supervised baseline is fitted in one go; leave out --resume");
    }
    if settings.env.actions != ActionSpace::Target {
        eprintln!("note: {name} decides target positions: env.actions=target for this model");
        settings.env.actions = ActionSpace::Target;
    }
    let d = prepare(series, vocab, hashes, settings)?;
    let settings = &d.settings;
    let started = std::time::Instant::now();
    let (env, scoring) = (settings.env_config(), Scoring::from_settings(&settings.ppo));
    let fill = |p: &mut Provenance| -> Result<()> {
        p.vocabulary = d.vocab.clone();
        p.features = d.features.clone();
        p.settings = serde_json::to_value(settings)?;
        p.data = d.hashes.clone();
        p.normalisation = normalisations(&d.markets);
        Ok(())
    };
    let (agent, candidates): (Box<dyn Agent + Send>, _) = if kind == AgentKind::Gbt {
        let (mut agent, c) = fit_gbt(&d.markets, &env, &settings.gbt, scoring)?;
        fill(&mut agent.provenance)?;
        (Box::new(agent), c)
    } else {
        let (mut agent, c) = fit_logistic(&d.markets, &env, &settings.logreg, scoring)?;
        fill(&mut agent.provenance)?;
        (Box::new(agent), c)
    };
    let percent = |a: Option<f64>| a.map_or("-".to_string(), |a| format!("{:.1}%", 100.0 * a));
    for c in &candidates {
        eprintln!(
            "{:<10} accuracy train {}, validation {}; validation {}",
            c.label,
            percent(Some(c.train_accuracy)),
            percent(c.validation_accuracy),
            validation_line(&c.validation)
        );
    }
    let chosen = agent.provenance().best_validation.clone().unwrap_or_default();
    let label = candidates
        .iter()
        .find(|c| c.validation == chosen)
        .map_or(String::new(), |c| c.label.clone());
    let run_dir = run_dir(a, recorder, settings.seed);
    let best = tradelab_agents::trainer::best_dir(&run_dir);
    agent.save(&best)?;
    eprintln!(
        "chose {label} in {:.1}s: validation {}",
        started.elapsed().as_secs_f64(),
        validation_line(&chosen)
    );
    if let Some(warning) = chosen.warning() {
        eprintln!("warning: {warning}");
    }
    println!("best model: {}", best.display());
    let Some(r) = recorder else { return Ok(()) };
    let run = r.start_run(
        &format!("train {name}"),
        &json!({"agent": name, "instruments": d.vocab.instruments, "timeframes": d.vocab.timeframes,
                "seed": settings.seed, "run_dir": run_dir.display().to_string(), "settings": settings}),
        &json!({"kind": "train", "agent": name}),
    )?;
    for (step, c) in candidates.iter().enumerate() {
        let mut points = vec![
            ("validation_score", step as i64, c.validation.score),
            ("train_accuracy", step as i64, c.train_accuracy),
        ];
        if let Some(v) = c.validation_accuracy {
            points.push(("validation_accuracy", step as i64, v));
        }
        r.log_metrics(&run, &points);
    }
    let registered = a.name.as_deref().unwrap_or(name);
    let (version, dir) = r.register_checkpoint(registered, &best, Some(&run))?;
    r.finish_run(&run, RunStatus::Finished)?;
    let record = Registered {
        run: &run,
        name: registered,
        version,
        dir: &dir,
    };
    report_job_result(r, &record, Some(&chosen), &best, &d.markets, settings)?;
    println!(
        "registered: {registered} version {version} ({}), run {run}",
        dir.display()
    );
    Ok(())
}

/// Where a run's checkpoints go: `--out`, else a folder of the job's own
/// when a worker runs it (two queued runs of one agent and seed, a sweep's
/// trials, may run at once on one machine), else `runs/<agent>-seed<seed>`.
fn run_dir(a: &TrainArgs, recorder: Option<&Recorder>, seed: u64) -> PathBuf {
    a.out.clone().unwrap_or_else(|| match recorder.and_then(Recorder::job) {
        Some(job) => PathBuf::from(format!("runs/jobs/{job}")),
        None => PathBuf::from(format!("runs/{}-seed{seed}", a.agent)),
    })
}

/// A model version a run registered.
struct Registered<'a> {
    run: &'a str,
    name: &'a str,
    version: i64,
    dir: &'a Path,
}

/// The job's result when a worker runs this process: the run and model,
/// and for sweeps the chosen checkpoint's validation and its per-bar
/// validation returns.
fn report_job_result(
    r: &Recorder,
    m: &Registered<'_>,
    validation: Option<&ValidationMetrics>,
    best: &Path,
    markets: &[TrainingMarket],
    settings: &Settings,
) -> Result<()> {
    let mut result =
        json!({"run_id": m.run, "model": m.name, "version": m.version, "location": m.dir.display().to_string()});
    if r.job().is_some() {
        if let Some(v) = validation {
            result["validation"] = serde_json::to_value(v)?;
        }
        if let Some(returns) = validation_returns(best, markets, settings)? {
            result["validation_returns"] = json!(returns);
        }
    }
    r.job_result(&result)
}

/// The most validation bars a job result carries (about 400 kB of JSON).
const MAX_RESULT_RETURNS: usize = 20_000;

/// The best model's per-bar validation returns after costs, market after
/// market, for a sweep to compare trials on (its overfitting test); `None`
/// without a validation split or beyond [`MAX_RESULT_RETURNS`] bars.
fn validation_returns(best: &Path, markets: &[TrainingMarket], settings: &Settings) -> Result<Option<Vec<f64>>> {
    let bars: usize = markets.iter().map(|m| m.data.steps(Split::Validation).len()).sum();
    if bars == 0 || bars > MAX_RESULT_RETURNS {
        return Ok(None);
    }
    let mut agent = load_agent(best)?;
    let env = settings.env_config();
    let mut returns = Vec::with_capacity(bars);
    for m in markets {
        returns.extend(greedy_returns(&mut *agent, &m.data, m.key, Split::Validation, &env)?);
    }
    Ok(Some(returns))
}

/// Stores a training event's figures as metric points at its environment
/// step (a validation at the step of the update before it).
fn record_event(r: &Recorder, run: &str, e: &Event<'_>, last_step: &mut i64) {
    match e {
        Event::Update(p) => {
            let step = p.env_steps as i64;
            *last_step = step;
            let s = &p.stats;
            let mut points = vec![
                ("policy_loss", step, s.policy_loss),
                ("value_loss", step, s.value_loss),
                ("entropy", step, s.entropy),
                ("approx_kl", step, s.approx_kl),
                ("clip_fraction", step, s.clip_fraction),
                ("explained_variance", step, s.explained_variance),
                ("learning_rate", step, s.learning_rate),
                ("steps_per_second", step, p.steps_per_second),
            ];
            if let Some(ret) = p.return_moving_average {
                points.push(("episode_return_avg100", step, ret));
            }
            if s.segments_per_decision > 0.0 {
                points.push(("segments_per_decision", step, s.segments_per_decision));
            }
            let gate_names: Vec<String> = SPECIALISTS.iter().map(|n| format!("gate_{n}")).collect();
            for (name, w) in gate_names.iter().zip(&s.gate_weights) {
                points.push((name, step, *w));
            }
            r.log_metrics(run, &points);
            r.job_progress(
                &json!({
                    "phase": "training",
                    "run_id": run,
                    "step": p.env_steps,
                    "total_steps": p.total_steps,
                    "percent": p.percent(),
                    "steps_per_second": p.steps_per_second,
                    "eta_seconds": p.eta_seconds,
                    "episode_return_avg100": p.return_moving_average,
                    "policy_loss": s.policy_loss,
                    "value_loss": s.value_loss,
                }),
                p.env_steps >= p.total_steps,
            );
        }
        Event::Validation { metrics, .. } => r.log_metrics(
            run,
            &[
                ("validation_return_pct", *last_step, metrics.return_pct),
                ("validation_trades", *last_step, metrics.trades as f64),
                ("validation_sharpe", *last_step, metrics.sharpe),
                ("validation_score", *last_step, metrics.score),
                ("validation_entries", *last_step, metrics.entries as f64),
                ("validation_exposure", *last_step, metrics.exposure),
            ],
        ),
    }
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
        let pct = p.percent();
        let opt = |x: Option<f64>| x.map_or("    -".to_string(), |v| format!("{v:+.2}"));
        let eta = p.eta_seconds.round() as u64;
        format!(
            "[{pct:5.1}%] step {}/{} | ep reward {} | avg100 {} | pi {:+.4} v {:.4} H {:.3} kl {:.4} clip {:.2} ev {:+.2} | {:.0} steps/s | ETA {}:{:02}",
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
        ) + &if p.stats.segments_per_decision > 0.0 {
            format!(" | seg {:.2} halt {:.3}", p.stats.segments_per_decision, p.stats.halt_loss)
        } else {
            String::new()
        }
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
                // Printed whatever the output: a log of a piped run shows
                // how validation went too.
                if self.drawn {
                    let _ = write!(err, "\r\x1b[2K");
                }
                let _ = writeln!(
                    err,
                    "validation at update {}: {}{}",
                    metrics.at_update,
                    validation_line(metrics),
                    if improved { "  new best" } else { "" }
                );
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

/// One validation in a line: the Sharpe ratio checkpoints are chosen by,
/// the return, entries, closed trades and time in the market.
fn validation_line(m: &ValidationMetrics) -> String {
    format!(
        "Sharpe {:+.2}, return {:+.2}%, {} entries, {} trades, in the market {:.0}% of bars",
        m.sharpe,
        m.return_pct,
        m.entries,
        m.trades,
        m.exposure * 100.0
    )
}
