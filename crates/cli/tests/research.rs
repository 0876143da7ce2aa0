//! Research runs made of jobs, across real processes. `tradelab sweep`: a
//! successive-halving sweep whose trials are training jobs run by the
//! sweep's own worker, killed (SIGKILL) after its first trial ends, then
//! resumed by the same command to the end: every trial run once per rung,
//! the ranking, the overfitting statistics and a best-settings file that
//! `--config` reads. `train --seeds`: seeds as jobs, their spread, and
//! their evaluation as one ensemble.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

fn tradelab(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradelab"));
    c.current_dir(cwd)
        .env("NO_COLOR", "1")
        .env(
            "TRADELAB_DATABASE_URL",
            format!("sqlite://{}", cwd.join("sweep.db").display()),
        )
        .args(common::SMALL_MODEL)
        .args(["--set", "store.job_lease_secs=2"]);
    c
}

const SWEEP: &str = "
agent: ppo-mlp
symbols: [synth]
steps: 1024
seed: 3
trials: 4
search: halving
halving: {min_steps: 256, eta: 2}
settings: [\"env.actions=target\"]
space:
  ppo.learning_rate: {log_uniform: [1.0e-4, 1.0e-2]}
  ppo.entropy_coef: {choice: [0.0, 0.02]}
";

#[test]
fn a_killed_sweep_resumes_to_a_ranking_and_a_best_settings_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("data/raw")).unwrap();
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", common::text(&o));
    ok(tradelab(d)
        .args(["data", "synth", "--bars", "1200", "--out", "data/raw/synth.csv"])
        .output()
        .unwrap());
    ok(tradelab(d).args(["data", "prepare"]).output().unwrap());
    std::fs::write(d.join("space.yaml"), SWEEP).unwrap();

    // First life: killed once its first trial has ended.
    let mut first = tradelab(d)
        .args(["sweep", "space.yaml", "--out", "out"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    for line in BufReader::new(first.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("[1/4] trial") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(300), "{seen:?}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        seen[0].contains("4 trials, successive halving, eta 2 (256 -> 512 -> 1024 steps)"),
        "{seen:?}"
    );
    let state: Value = serde_json::from_str(&std::fs::read_to_string(d.join("out/state.json")).unwrap()).unwrap();
    let done_before = state["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["outcome"].is_null())
        .count();
    assert!(done_before >= 1, "{state}");

    // Second life: the same command resumes and finishes.
    let o = tradelab(d)
        .args(["sweep", "space.yaml", "--out", "out"])
        .output()
        .unwrap();
    let text = common::text(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("(resumed)"), "{text}");
    assert!(text.contains("rung 3/3: 1 trial(s) at 1024 steps"), "{text}");
    assert!(text.contains("ranking on validation"), "{text}");
    assert!(
        text.contains("deflated Sharpe ratio of the best, given 4 trials"),
        "{text}"
    );
    assert!(
        text.contains("probability of backtest overfitting, rung 1 (4 trials"),
        "{text}"
    );

    let state: Value = serde_json::from_str(&std::fs::read_to_string(d.join("out/state.json")).unwrap()).unwrap();
    let runs = state["runs"].as_array().unwrap();
    // 4 trials at 256 steps, the best 2 at 512, the best 1 at 1024.
    let per_rung: Vec<usize> = (0..3).map(|r| runs.iter().filter(|x| x["rung"] == r).count()).collect();
    assert_eq!(per_rung, vec![4, 2, 1], "{state}");
    let mut jobs: Vec<&str> = runs.iter().map(|r| r["job"].as_str().unwrap()).collect();
    jobs.sort();
    jobs.dedup();
    assert_eq!(jobs.len(), 7, "one job per trial run, none repeated");
    for r in runs {
        assert_eq!(r["outcome"]["status"], "finished", "{r}");
        assert!(r["outcome"]["returns"].as_array().unwrap().len() > 50, "{r}");
    }

    let report: Value = serde_json::from_str(&std::fs::read_to_string(d.join("out/sweep.json")).unwrap()).unwrap();
    assert_eq!(report["rows"].as_array().unwrap().len(), 4);
    assert_eq!(report["rows"][0]["rank"], 1);
    assert_eq!(report["rows"][0]["steps"], 1024, "the best reached the last rung");
    let pbo = report["overfitting"][0]["result"]["Ok"]["pbo"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&pbo), "{report}");

    // The best settings: a file --config reads, holding the best trial's values.
    let best = std::fs::read_to_string(d.join("out/best.yaml")).unwrap();
    let trial = report["rows"][0]["trial"].as_u64().unwrap() as usize;
    let lr = state["trials"][trial]["params"]["ppo.learning_rate"].as_f64().unwrap();
    assert!(best.contains(&format!("learning_rate: {lr}")), "{best}");
    assert!(
        best.contains("actions: \"target\"") && best.contains("total_steps: 1024"),
        "{best}"
    );
    ok(tradelab(d)
        .args([
            "--config",
            "out/best.yaml",
            "backtest",
            "--strategy",
            "buy_and_hold",
            "--symbol",
            "synth",
        ])
        .output()
        .unwrap());

    // Run again when finished: nothing is queued, the same ranking.
    let again = tradelab(d)
        .args(["sweep", "space.yaml", "--out", "out"])
        .output()
        .unwrap();
    assert!(again.status.success());
    let again: Value = serde_json::from_str(&std::fs::read_to_string(d.join("out/sweep.json")).unwrap()).unwrap();
    assert_eq!(again["rows"], report["rows"]);
}

#[test]
fn bad_sweeps_are_refused_with_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let o = tradelab(d).args(["sweep", "missing.yaml"]).output().unwrap();
    common::assert_clean_failure(&o, &["missing.yaml", "does it exist"]);

    std::fs::write(d.join("space.yaml"), SWEEP.replace("[synth]", "[nothing-here]")).unwrap();
    let o = tradelab(d).args(["sweep", "space.yaml"]).output().unwrap();
    common::assert_clean_failure(&o, &["nothing-here"]);

    std::fs::write(
        d.join("space.yaml"),
        SWEEP.replace(
            "ppo.entropy_coef: {choice: [0.0, 0.02]}",
            "ppo.entropy_coef: {uniform: [0.1, 0.01]}",
        ),
    )
    .unwrap();
    let o = tradelab(d).args(["sweep", "space.yaml"]).output().unwrap();
    common::assert_clean_failure(&o, &["space.ppo.entropy_coef", "low <= high"]);
}

/// Synthetic prepared data in a fresh folder.
fn prepared() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("data/raw")).unwrap();
    for args in [
        &["data", "synth", "--bars", "1200", "--out", "data/raw/synth.csv"][..],
        &["data", "prepare"][..],
    ] {
        let o = tradelab(d).args(args).output().unwrap();
        assert!(o.status.success(), "{}", common::text(&o));
    }
    tmp
}

#[test]
fn seeds_train_as_jobs_and_evaluate_together_as_an_ensemble() {
    let tmp = prepared();
    let d = tmp.path();
    let o = tradelab(d)
        .args([
            "--seed", "5", "train", "--agent", "ppo-mlp", "--symbol", "synth", "--steps", "512",
        ])
        .args(["--seeds", "3", "--workers", "2", "--name", "seeded"])
        .output()
        .unwrap();
    let text = common::text(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("with 3 seeds (5..=7)"), "{text}");
    for seed in 5..=7 {
        assert!(text.contains(&format!("  seed {seed}: validation score")), "{text}");
    }
    assert!(
        text.contains("across 3 seeds") && text.contains("Sharpe    mean"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("evaluate them as an ensemble: tradelab evaluate"))
        .unwrap_or_else(|| panic!("{text}"));
    let models: Vec<&str> = line.split("--model ").skip(1).map(str::trim).collect();
    let mut sorted = models.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["seeded@1", "seeded@2", "seeded@3"], "{line}");

    // The printed command runs: one ensemble, greedy and sampled.
    let mut eval = tradelab(d);
    eval.arg("evaluate");
    for m in &models {
        eval.args(["--model", m]);
    }
    let o = eval.args(["--paths", "2", "--out-dir", "ens"]).output().unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(d.join("ens/evaluation.json")).unwrap()).unwrap();
    assert_eq!(report["kind"], "ensemble");
    assert_eq!(report["models"].as_array().unwrap().len(), 3);

    // A model that observes another window cannot join them.
    let o = tradelab(d)
        .args([
            "--set",
            "env.window=12",
            "train",
            "--agent",
            "ppo-mlp",
            "--symbol",
            "synth",
            "--steps",
            "256",
        ])
        .args(["--out", "wide", "--name", "wide"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let o = tradelab(d)
        .args(["evaluate", "--model", models[0], "--model", "wide/best"])
        .output()
        .unwrap();
    common::assert_clean_failure(&o, &["ensemble", "`env.window`"]);

    // --seeds runs through the queue: folders are the queue's to choose.
    let o = tradelab(d)
        .args(["train", "--agent", "ppo-mlp", "--seeds", "2", "--out", "x"])
        .output()
        .unwrap();
    common::assert_clean_failure(&o, &["--seeds", "--out"]);
}

#[test]
fn the_supervised_baselines_train_register_evaluate_and_stand_beside_every_agent() {
    let tmp = prepared();
    let d = tmp.path();
    let o = tradelab(d)
        .args(["train", "--agent", "logreg", "--symbol", "synth"])
        .output()
        .unwrap();
    let text = common::text(&o);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("logreg decides target positions"), "{text}");
    assert_eq!(
        text.matches("accuracy train").count(),
        4,
        "one line per C in logreg.c_grid: {text}"
    );
    assert!(
        text.contains("chose C") && text.contains("registered: logreg version 1"),
        "{text}"
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("runs/logreg-seed42/best/metadata.json")).unwrap())
            .unwrap();
    assert_eq!(meta["model"], "logreg");
    assert_eq!(meta["settings"]["env"]["actions"], "target");

    // Evaluated like any model, out of sample.
    let o = tradelab(d)
        .args(["evaluate", "--model", "logreg", "--out-dir", "eval-logreg"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval-logreg/evaluation.json")).unwrap()).unwrap();
    assert_eq!(report["kind"], "logreg");
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        6,
        "the model, the four rule baselines and boosted trees: {report}"
    );

    // Beside an RL agent, it is fitted on the same train split and traded too.
    let o = tradelab(d)
        .args([
            "train", "--agent", "ppo-mlp", "--symbol", "synth", "--steps", "256", "--out", "rl",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let o = tradelab(d)
        .args(["evaluate", "--model", "rl/best", "--out-dir", "eval-rl"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval-rl/evaluation.json")).unwrap()).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        7,
        "the model, four rule baselines and the two supervised ones: {report}"
    );
    for kind in ["logreg", "gbt"] {
        assert!(runs.iter().any(|r| r["model_used"] == kind), "{kind}: {report}");
    }

    // Boosted trees train, register and evaluate the same way.
    let o = tradelab(d)
        .args(["train", "--agent", "gbt", "--symbol", "synth"])
        .output()
        .unwrap();
    let text = common::text(&o);
    assert!(o.status.success(), "{text}");
    assert_eq!(
        text.matches("accuracy train").count(),
        3,
        "one line per size in gbt.trees: {text}"
    );
    assert!(text.contains("registered: gbt version 1"), "{text}");
    let o = tradelab(d)
        .args(["evaluate", "--model", "gbt", "--out-dir", "eval-gbt"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval-gbt/evaluation.json")).unwrap()).unwrap();
    assert_eq!(report["kind"], "gbt");
}

#[test]
fn a_held_out_instrument_is_evaluated_through_the_unknown_instrument_embedding() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("data/raw")).unwrap();
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", common::text(&o));
        common::text(&o)
    };
    for (seed, name) in [("1", "alpha"), ("2", "beta")] {
        ok(tradelab(d)
            .args(["--seed", seed, "data", "synth", "--bars", "1200", "--out"])
            .arg(format!("data/raw/{name}.csv"))
            .output()
            .unwrap());
    }
    ok(tradelab(d).args(["data", "prepare"]).output().unwrap());

    let text = ok(tradelab(d)
        .args([
            "train",
            "--agent",
            "ppo-mlp",
            "--steps",
            "512",
            "--holdout",
            "beta",
            "--out",
            "open",
        ])
        .output()
        .unwrap());
    assert!(text.contains("ppo.instrument_dropout=0.1"), "{text}");
    assert!(text.contains("on 1 market(s) [alpha]"), "{text}");
    assert!(
        text.contains("held out beta: evaluate it unseen with: tradelab evaluate --model open/best --symbol beta"),
        "{text}"
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("open/best/metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["vocabulary"]["unknown_instrument"], true, "{}", meta["vocabulary"]);

    let text = ok(tradelab(d)
        .args([
            "evaluate",
            "--model",
            "open/best",
            "--symbol",
            "beta",
            "--out-dir",
            "unseen",
        ])
        .output()
        .unwrap());
    assert!(text.contains("never saw beta"), "{text}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("unseen/evaluation.json")).unwrap()).unwrap();
    assert_eq!(report["unseen_instruments"], serde_json::json!(["beta"]));
    let text = ok(tradelab(d)
        .args([
            "adapt",
            "--model",
            "open/best",
            "--data",
            "beta",
            "--steps",
            "256",
            "--out",
            "adapted",
        ])
        .output()
        .unwrap());
    assert!(text.contains("never saw beta"), "{text}");

    // Without the embedding, an unseen instrument is refused with the fix.
    ok(tradelab(d)
        .args([
            "train", "--agent", "ppo-mlp", "--steps", "256", "--symbol", "alpha", "--out", "closed",
        ])
        .output()
        .unwrap());
    let o = tradelab(d)
        .args(["evaluate", "--model", "closed/best", "--symbol", "beta"])
        .output()
        .unwrap();
    common::assert_clean_failure(&o, &["ppo.instrument_dropout"]);
    let o = tradelab(d)
        .args(["train", "--agent", "ppo-mlp", "--holdout", "gamma"])
        .output()
        .unwrap();
    common::assert_clean_failure(&o, &["--holdout gamma"]);
}
