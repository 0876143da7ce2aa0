//! The binary end to end: the main job, and every entry point's answer to
//! bad input (non-zero exit, a one-line cause with a hint, never a panic).

use std::path::Path;
use std::process::{Command, Output};

mod common;

use common::{assert_clean_failure, root, SMALL_MODEL};

/// Runs tradelab in `cwd` with settings pointing at the bundled data.
fn tradelab(cwd: &Path, args: &[&str]) -> Output {
    let raw = root().join("data/raw");
    Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .args(["--set", &format!("data.raw_dir={}", raw.display())])
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn missing_file_is_named_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(dir.path(), &["data", "validate", "/no/such/prices.csv"]);
    assert_clean_failure(&o, &["/no/such/prices.csv", "exists"]);
    // A folder where a file belongs cannot be read as one.
    let o = tradelab(dir.path(), &["data", "validate", dir.path().to_str().unwrap()]);
    assert_clean_failure(&o, &[dir.path().to_str().unwrap(), "readable"]);
}

/// Issue 20: run from a folder without data, the main job says which
/// folder it looked in and how to fix it, and leaves no empty database.
#[test]
fn running_in_the_wrong_folder_says_where_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["run"])
        .output()
        .unwrap();
    assert_clean_failure(&o, &["data/raw does not exist", "project folder", "data.raw_dir"]);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "a failed run leaves nothing: {left:?}");
}

/// Issue 20: yfinance's three-row header and monthly bars, end to end.
#[test]
fn yfinance_files_load_and_resample_to_months_labelled_by_their_first_trading_day() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("Price,Adj Close,Close,High,Low,Open,Volume\nTicker,X,X,X,X,X,X\nDate,,,,,,\n");
    // 2024-01-02 (a Tuesday) to 2024-03-29, weekdays only.
    let first = tradelab_core::time::days_from_civil(2024, 1, 2);
    for d in first..tradelab_core::time::days_from_civil(2024, 3, 30) {
        if !tradelab_core::calendar::is_weekend(d) {
            let date = tradelab_core::time::format_date(d * 86_400_000);
            text.push_str(&format!("{date},50,100,101,99,100,10\n"));
        }
    }
    let file = dir.path().join("x.csv");
    std::fs::write(&file, text).unwrap();
    let o = tradelab(dir.path(), &["data", "validate", "x.csv"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("yfinance") && out.contains("Adj Close not used"), "{out}");
    assert!(out.contains("policy: repair"), "settings spelling, not Repair: {out}");
    let o = tradelab(
        dir.path(),
        &["data", "resample", "x.csv", "--to", "1M", "--out", "m.csv"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let months = std::fs::read_to_string(dir.path().join("m.csv")).unwrap();
    let dates: Vec<&str> = months.lines().skip(1).map(|l| &l[..10]).collect();
    assert_eq!(dates, ["2024-01-02", "2024-02-01", "2024-03-01"]);
    let o = tradelab(
        dir.path(),
        &["data", "resample", "m.csv", "--to", "1d", "--out", "d.csv"],
    );
    assert_clean_failure(&o, &["cannot resample 1M bars to 1d", "coarser"]);
}

#[test]
fn corrupt_and_ambiguous_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, b"\x00\x01\x02garbage\xff\xfe\n,,\n").unwrap();
    let o = tradelab(dir.path(), &["data", "validate", bad.to_str().unwrap()]);
    assert_clean_failure(&o, &["bad.csv"]);
    let shifted = dir.path().join("shifted.csv");
    std::fs::write(&shifted, "Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5,99\n").unwrap();
    let o = tradelab(dir.path(), &["data", "validate", shifted.to_str().unwrap()]);
    assert_clean_failure(&o, &["shifted.csv", "fix the header"]);
}

#[test]
fn bad_settings_name_the_key_value_and_allowed_range() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(
        dir.path(),
        &[
            "--set",
            "risk.max_drawdown=2",
            "backtest",
            "-s",
            "sma_crossover",
            "--symbol",
            "nvda",
        ],
    );
    assert_clean_failure(&o, &["risk.max_drawdown", "2", "[0, 1]"]);
    let cfg = dir.path().join("s.yaml");
    std::fs::write(&cfg, "backtest:\n  costs:\n    entry_fee: 25\n").unwrap();
    let o = tradelab(
        dir.path(),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "backtest",
            "-s",
            "sma_crossover",
            "--symbol",
            "nvda",
        ],
    );
    assert_clean_failure(&o, &["backtest.costs", "entry_fee", "entry_fixed"]);
    std::fs::write(&cfg, "risk: [oops\n").unwrap();
    let o = tradelab(dir.path(), &["--config", cfg.to_str().unwrap(), "data", "prepare"]);
    assert_clean_failure(&o, &["s.yaml", "not valid YAML"]);
    let o = tradelab(dir.path(), &["--config", "/no/settings.yaml", "data", "prepare"]);
    assert_clean_failure(&o, &["/no/settings.yaml", "--config"]);
    let o = tradelab(
        dir.path(),
        &[
            "backtest",
            "-s",
            "sma_crossover",
            "--symbol",
            "nvda",
            "--fill",
            "tomorrow",
        ],
    );
    assert_clean_failure(&o, &["backtest.fill", "tomorrow", "next_open"]);
}

#[test]
fn unknown_strategy_and_symbol_list_the_choices() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(dir.path(), &["backtest", "-s", "moonshot", "--symbol", "nvda"]);
    assert_clean_failure(&o, &["moonshot", "sma_crossover", "buy_and_hold"]);
    let o = tradelab(dir.path(), &["backtest", "-s", "momentum", "--symbol", "msft"]);
    assert_clean_failure(&o, &["msft", "nvda-1999-2014"]);
    let o = tradelab(dir.path(), &["stress", "-s", "nope", "--symbol", "nvda"]);
    assert_clean_failure(&o, &["nope"]);
    let o = tradelab(dir.path(), &["bench", "everything"]);
    assert_clean_failure(&o, &["everything", "engine"]);
}

#[test]
fn resample_and_synth_refuse_bad_arguments_and_work_on_good_ones() {
    let dir = tempfile::tempdir().unwrap();
    let m5 = root().join("data/raw/2006-min-005.txt");
    let o = tradelab(
        dir.path(),
        &["data", "resample", m5.to_str().unwrap(), "--to", "7x", "--out", "x.csv"],
    );
    assert_clean_failure(&o, &["7x", "timeframe"]);
    let o = tradelab(
        dir.path(),
        &["data", "resample", m5.to_str().unwrap(), "--to", "7m", "--out", "x.csv"],
    );
    assert_clean_failure(&o, &["whole multiple"]);
    let o = tradelab(
        dir.path(),
        &[
            "data",
            "resample",
            m5.to_str().unwrap(),
            "--to",
            "1h",
            "--out",
            "h1.csv",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tradelab(dir.path(), &["data", "synth", "--bars", "1", "--out", "s.csv"]);
    assert_clean_failure(&o, &["--bars"]);
    let o = tradelab(dir.path(), &["data", "synth", "--bars", "800", "--out", "s.csv"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Both outputs are loadable data: backtest them straight from their paths.
    for f in ["h1.csv", "s.csv"] {
        let o = tradelab(
            dir.path(),
            &["backtest", "-s", "momentum", "--symbol", f, "--out-dir", "r"],
        );
        assert!(o.status.success(), "{f}: {}", stderr(&o));
    }
}

#[test]
fn stress_reports_percentiles_and_writes_json() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(
        dir.path(),
        &[
            "stress",
            "-s",
            "momentum",
            "--symbol",
            "orcl",
            "--paths",
            "200",
            "--out-dir",
            "r",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("equity p50"), "{}", stdout(&o));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("r/stress.json")).unwrap()).unwrap();
    let first = &v.as_array().unwrap()[0];
    assert_eq!(first["paths"], 200);
    assert!(first["final_equity"]["p05"].as_f64().unwrap() <= first["final_equity"]["p95"].as_f64().unwrap());
    let o = tradelab(
        dir.path(),
        &["stress", "-s", "momentum", "--symbol", "orcl", "--paths", "0"],
    );
    assert_clean_failure(&o, &["monte_carlo.paths"]);
}

#[test]
fn empty_data_folder_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = tradelab(
        dir.path(),
        &["--set", &format!("data.raw_dir={}", empty.display()), "data", "prepare"],
    );
    assert_clean_failure(&o, &["no data files", "empty"]);
}

#[test]
fn backtest_writes_the_seed_report_fields_and_a_chart() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(
        dir.path(),
        &[
            "backtest",
            "-s",
            "sma_crossover",
            "--symbol",
            "nvda",
            "--out-dir",
            "out",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("Sharpe") && text.contains("95% interval") && text.contains("Sharpe minus buy-and-hold's"),
        "{text}"
    );
    let json = std::fs::read_to_string(dir.path().join("out/sma_crossover_10_30__nvda-1999-2014.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "simulation_id",
        "model_used",
        "start_date",
        "end_date",
        "portfolio_start",
        "portfolio_end",
        "total_trades",
        "max_drawdown_pct",
        "avg_trade_return_pct",
        "best_trade_return_pct",
        "worst_trade_return_pct",
        "metrics",
        "trades",
        "equity_curve",
    ] {
        assert!(v.get(key).is_some(), "report lacks {key}");
    }
    assert_eq!(v["portfolio_start"], 100000.0);
    assert_eq!(v["start_date"], "1999-01-22");
    let svg = std::fs::read_to_string(dir.path().join("out/sma_crossover_10_30__nvda-1999-2014.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("buy and hold") && svg.contains("long entry"));
    // The store lists it with its figures and shows its documents.
    let listed = tradelab(dir.path(), &["backtests", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let first = &listed[0];
    assert_eq!(first["strategy"], "sma_crossover(10,30)");
    assert_eq!(first["instruments"][0], "nvda-1999-2014");
    assert_eq!(first["total_pnl"], v["metrics"]["total_pnl"]);
    let id = first["id"].as_str().unwrap();
    let table = stdout(&tradelab(dir.path(), &["backtests", "list", "--strategy", "sma"]));
    assert!(
        table.contains(id) && table.contains("Sharpe") && table.contains("nvda-1999-2014"),
        "{table}"
    );
    let none = stdout(&tradelab(dir.path(), &["backtests", "list", "--instrument", "btc"]));
    assert!(none.contains("no backtests recorded"), "{none}");
    // The stored report carries buy-and-hold beside it and the Sharpe
    // ratio's interval (the dashboard's report shows both).
    let stored = tradelab(dir.path(), &["backtests", "show", id]);
    let stored: serde_json::Value = serde_json::from_slice(&stored.stdout).unwrap();
    assert_eq!(stored["baselines"][0]["name"], "buy_and_hold", "{stored}");
    assert!(stored["baselines"][0]["metrics"]["sharpe"].is_number(), "{stored}");
    let st = &stored["statistics"];
    let (low, sharpe, high) = (
        st["sharpe_low"].as_f64().unwrap(),
        st["sharpe"].as_f64().unwrap(),
        st["sharpe_high"].as_f64().unwrap(),
    );
    assert!(low <= sharpe && sharpe <= high, "{st}");
    assert!(st["difference_p_value"].is_number(), "{st}");
    let trades = tradelab(dir.path(), &["backtests", "show", id, "--part", "trades"]);
    let trades: serde_json::Value = serde_json::from_slice(&trades.stdout).unwrap();
    assert_eq!(trades.as_array().unwrap().len(), v["trades"].as_array().unwrap().len());
    assert_clean_failure(
        &tradelab(dir.path(), &["backtests", "show", "nope"]),
        &["no backtest `nope`"],
    );
    assert_clean_failure(
        &tradelab(dir.path(), &["backtests", "show", id, "--part", "fills"]),
        &["--part fills", "trades"],
    );
    // The interactive report: one file, its chart library inline.
    let html = std::fs::read_to_string(dir.path().join("out/sma_crossover_10_30__nvda-1999-2014.html")).unwrap();
    assert!(html.contains("var uPlot=") && html.contains("report-data") && !html.contains("src=\"http"));
    // Same seed and settings: the same report, byte for byte.
    let again = tradelab(
        dir.path(),
        &[
            "backtest",
            "-s",
            "sma_crossover",
            "--symbol",
            "nvda",
            "--out-dir",
            "out2",
        ],
    );
    assert!(again.status.success());
    let second = std::fs::read_to_string(dir.path().join("out2/sma_crossover_10_30__nvda-1999-2014.json")).unwrap();
    assert!(json == second, "two runs with the same settings gave different reports");
}

#[test]
fn main_job_prepares_data_runs_every_baseline_and_reuses_the_feature_cache() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(dir.path(), &["run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("features: 6 computed, 0 from cache"), "{out}");
    for name in tradelab_sim::strategies::BASELINES {
        assert!(out.contains(name), "{name} missing from {out}");
    }
    // Issue 20: what the risk layer did is in the table and said under it.
    assert!(out.contains("risk events") && out.contains("halted"), "{out}");
    assert!(
        out.contains("risk layer (as for the agents)") && out.contains("were halted by the breaker"),
        "{out}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("reports/latest/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 6 * 4, "6 baselines on 4 daily files");
    assert!(dir.path().join("data/final/manifest.json").exists());
    // Every backtest is stored, under one run, in the embedded SQLite default.
    assert!(
        out.contains("stored: run") && out.contains("with 24 backtests"),
        "{out}"
    );
    let runs = stdout(&tradelab(dir.path(), &["runs", "list"]));
    assert!(runs.contains("baselines") && runs.contains("finished"), "{runs}");
    let again = tradelab(dir.path(), &["run"]);
    assert!(
        stdout(&again).contains("features: 0 computed, 6 from cache"),
        "{}",
        stdout(&again)
    );
    // Issue 20: the second run reported into a folder of its own; the
    // first's reports are still there, and `latest` is the second's.
    let mut folders: Vec<String> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("run-"))
        .collect();
    folders.sort();
    assert_eq!(folders.len(), 2, "{folders:?}");
    for f in &folders {
        assert!(dir.path().join("reports").join(f).join("summary.json").exists(), "{f}");
    }
    let latest = std::fs::read_link(dir.path().join("reports/latest")).unwrap();
    assert!(stdout(&again).contains(latest.to_str().unwrap()), "{latest:?}");
}

/// A reader that stops early (`tradelab ... | head`) ends the command
/// quietly instead of a panic about a broken pipe.
#[cfg(unix)]
#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .args([
            "--set",
            "store.record=false",
            "backtest",
            "--strategy",
            "buy_and_hold",
            "--symbol",
            "orcl-1995-2014",
            "--out-dir",
        ])
        .arg(std::env::temp_dir().join(format!("tradelab-pipe-{}", std::process::id())))
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
}

/// `tradelab regimes` on a bundled daily file: states chosen by BIC and
/// ordered by volatility, probabilities that sum to 1 on every bar, and
/// bad settings named.
#[test]
fn regimes_are_fitted_on_the_training_split_and_filtered() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(
        dir.path(),
        &["--set", "store.record=false", "regimes", "--symbol", "nvda-1999-2014"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("states by BIC") && text.contains("latest bar"), "{text}");
    let o = tradelab(
        dir.path(),
        &[
            "--set",
            "store.record=false",
            "regimes",
            "--symbol",
            "nvda-1999-2014",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let r = &report[0];
    let states = r["states"].as_array().unwrap();
    assert!((2..=4).contains(&states.len()));
    let vols: Vec<f64> = states.iter().map(|s| s["volatility"].as_f64().unwrap()).collect();
    assert!(vols.windows(2).all(|w| w[0] <= w[1]), "ordered by volatility: {vols:?}");
    let probs = r["probabilities"].as_array().unwrap();
    assert_eq!(probs.len(), r["ts"].as_array().unwrap().len());
    for p in probs {
        let sum: f64 = p.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).sum();
        assert!((sum - 1.0).abs() < 1e-9);
    }
    assert_clean_failure(
        &tradelab(
            dir.path(),
            &["--set", "regime.max_states=9", "regimes", "--symbol", "nvda-1999-2014"],
        ),
        &["regime.max_states"],
    );
}

/// `regime.features=true`: a policy trained with the regime probabilities
/// among its inputs records them as features, and evaluation rebuilds them
/// from the model's own settings.
#[test]
fn a_policy_can_train_and_evaluate_on_regime_probabilities() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut args: Vec<&str> = SMALL_MODEL.to_vec();
    args.extend([
        "--set",
        "store.record=false",
        "--set",
        "ppo.eval_every=4",
        "--set",
        "regime.features=true",
        "train",
        "--agent",
        "ppo-mlp",
        "--symbol",
        "nvda-1999-2014",
    ]);
    args.extend(["--steps", "512", "--out", out.to_str().unwrap()]);
    let o = tradelab(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("best/metadata.json")).unwrap()).unwrap();
    let features: Vec<&str> = meta["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        features.ends_with(&[
            "regime_p0",
            "regime_p1",
            "regime_p2",
            "regime_p3",
            "specialist_trend",
            "specialist_mean_reversion",
            "specialist_volatility",
            "specialist_consolidation"
        ]),
        "{features:?}"
    );
    let model = out.join("best");
    let o = tradelab(
        dir.path(),
        &[
            "--set",
            "store.record=false",
            "evaluate",
            "--model",
            model.to_str().unwrap(),
            "--symbol",
            "nvda-1999-2014",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ppo-mlp"));
}

/// The JSON lines a `bench` run prints, by benchmark name.
fn bench_lines(o: &Output) -> std::collections::BTreeMap<String, serde_json::Value> {
    stdout(o)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["bench"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn benchmarks_report_every_figure_and_repeat_their_results_under_one_seed() {
    let dir = tempfile::tempdir().unwrap();
    let bench = || {
        let o = tradelab(
            dir.path(),
            &[
                "bench",
                "all",
                "--bars",
                "3000",
                "--repeats",
                "1",
                "--write-csv",
                "close.csv",
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        bench_lines(&o)
    };
    let first = bench();
    let names: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "csv_load_validate",
            "engine_sma_crossover",
            "portfolio_10_instruments",
            "streaming_features",
            "vec_env_random_actions"
        ]
    );
    for (name, rate) in [
        ("csv_load_validate", "rows_per_s"),
        ("engine_sma_crossover", "bars_per_s"),
        ("portfolio_10_instruments", "bars_per_s"),
        ("streaming_features", "updates_per_s"),
        ("vec_env_random_actions", "steps_per_s"),
    ] {
        let b = &first[name];
        assert!(b["median_s"].as_f64().unwrap() > 0.0, "{b}");
        assert!(b["min_s"].as_f64().unwrap() <= b["median_s"].as_f64().unwrap(), "{b}");
        assert!(b[rate].as_f64().unwrap() > 0.0, "{b}");
    }
    assert_eq!(first["csv_load_validate"]["rows"], 3000);
    assert!(first["engine_sma_crossover"]["trades"].as_u64().unwrap() > 0);
    // The close series vectorbt reads: a header and one row per bar.
    let csv = std::fs::read_to_string(dir.path().join("close.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("close"));
    assert_eq!(csv.lines().count(), 3001);

    // Timings vary; what was simulated does not.
    let second = bench();
    for (name, field) in [
        ("engine_sma_crossover", "final_value"),
        ("engine_sma_crossover", "trades"),
        ("portfolio_10_instruments", "final_value"),
        ("vec_env_random_actions", "checksum"),
    ] {
        assert_eq!(first[name][field], second[name][field], "{name}.{field}");
    }
    let o = tradelab(dir.path(), &["bench", "engine", "--bars", "50"]);
    assert_clean_failure(&o, &["--bars", "100"]);
}

#[test]
fn the_ppo_benchmark_reports_training_throughput_update_steps_and_decision_latency() {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = SMALL_MODEL.to_vec();
    args.extend(["bench", "ppo", "--bars", "512", "--repeats", "1"]);
    let o = tradelab(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = bench_lines(&o);
    let names: Vec<&str> = lines.keys().map(String::as_str).collect();
    assert_eq!(names, ["ppo_lstm", "ppo_mlp_training", "ppo_transformer"]);
    let mlp = &lines["ppo_mlp_training"];
    assert_eq!(
        (mlp["envs"].as_u64(), mlp["hidden"].as_u64()),
        (Some(4), Some(16)),
        "{mlp}"
    );
    assert!(mlp["steps_per_s_median"].as_f64().unwrap() > 0.0, "{mlp}");
    for encoder in ["ppo_lstm", "ppo_transformer"] {
        let b = &lines[encoder];
        let f = |k: &str| b[k].as_f64().unwrap();
        assert!(
            f("update_ms_p10") <= f("update_ms_median") && f("update_ms_median") <= f("update_ms_p90"),
            "{b}"
        );
        assert!(
            0.0 < f("decision_ms_p50") && f("decision_ms_p50") <= f("decision_ms_p99"),
            "{b}"
        );
    }
}

/// Issue 20: orders smaller than one lot trade nothing, and the backtest
/// says so, naming data.fractional, instead of a silent "+0, 0 trades".
#[test]
fn orders_rounding_to_zero_lots_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(
        dir.path(),
        &[
            "--set",
            "store.record=false",
            "--set",
            "data.lot_size=1000000",
            "backtest",
            "-s",
            "buy_and_hold",
            "--symbol",
            "nvda",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("on nvda-1999-2014 rounded to 0 units") && err.contains("data.fractional"),
        "{err}"
    );
    let normal = tradelab(
        dir.path(),
        &[
            "--set",
            "store.record=false",
            "backtest",
            "-s",
            "buy_and_hold",
            "--symbol",
            "nvda",
        ],
    );
    assert!(!stderr(&normal).contains("rounded to 0 units"), "{}", stderr(&normal));
}

/// Issue 21: hierarchical risk parity sizes a shared-cash portfolio from
/// the settings, end to end.
#[test]
fn a_portfolio_backtest_sizes_by_hierarchical_risk_parity() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(
        dir.path(),
        &[
            "--set",
            "backtest.sizing.method=hierarchical_risk_parity",
            "--set",
            "backtest.sizing.fraction=0.9",
            "backtest",
            "-s",
            "sma_crossover",
            "--symbol",
            "nvda",
            "--symbol",
            "orcl",
            "--symbol",
            "yhoo",
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let events = report["risk_events"].as_array().unwrap();
    // Crossovers in the first 60 bars have no weights yet: skipped and
    // recorded. Later ones trade every instrument.
    assert!(
        events
            .iter()
            .any(|e| e["reason"].as_str().unwrap().contains("hrp_window")),
        "{events:?}"
    );
    let traded: std::collections::BTreeSet<&str> = report["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["instrument"].as_str().unwrap())
        .collect();
    assert_eq!(traded.len(), 3, "every instrument trades: {traded:?}");
    let o = tradelab(
        dir.path(),
        &[
            "--set",
            "backtest.sizing.hrp_window=3",
            "backtest",
            "-s",
            "buy_and_hold",
            "--symbol",
            "nvda",
        ],
    );
    assert_clean_failure(&o, &["backtest.sizing.hrp_window"]);
}

/// Issue 25: a grid search end to end, and its answers to bad searches.
#[test]
fn optimize_ranks_a_grid_writes_its_reports_and_explains_bad_searches() {
    let dir = tempfile::tempdir().unwrap();
    let o = tradelab(
        dir.path(),
        &[
            "optimize",
            "-s",
            "sma_crossover",
            "--symbol",
            "nvda",
            "--param",
            "fast=5:20:5",
            "--param",
            "slow=30:90:20",
            "--constraint",
            "fast < slow",
            "--top",
            "3",
            "--out-dir",
            "opt",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for needle in [
        "16 combinations (grid)",
        "score (sharpe)",
        "deflated Sharpe ratio",
        "probability of backtest overfitting",
        "heatmap:",
    ] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    for f in ["optimize.json", "optimize.csv", "heatmap.svg", "optimize.html"] {
        assert!(dir.path().join("opt").join(f).is_file(), "{f}");
    }
    let csv = std::fs::read_to_string(dir.path().join("opt/optimize.csv")).unwrap();
    assert_eq!(csv.lines().count(), 17);

    let bad = |args: &[&str], needles: &[&str]| {
        let mut all = vec!["optimize", "-s", "sma_crossover", "--symbol", "nvda"];
        all.extend_from_slice(args);
        assert_clean_failure(&tradelab(dir.path(), &all), needles);
    };
    bad(
        &[
            "--param",
            "fast=50:60",
            "--param",
            "slow=20:30",
            "--constraint",
            "fast < slow",
        ],
        &["search is empty", "fast < slow"],
    );
    bad(&["--param", "speed=1:3"], &["unknown parameter `speed`", "fast, slow"]);
    bad(&["--param", "fast=0.5:3"], &["`0.5` is not a whole number"]);
    bad(
        &["--param", "fast=5:40", "--param", "slow=20:30"],
        &["refused by the settings", "--constraint"],
    );
    bad(&["--param", "fast=5:10", "--method", "random"], &["--trials"]);
    bad(
        &["--param", "fast=5:10", "--metric", "alpha"],
        &["unknown metric `alpha`", "sharpe"],
    );
    bad(
        &["--param", "fast=5:10", "--walk-forward", "500"],
        &["--walk-forward 500", "windows"],
    );
    bad(
        &["--param", "fast=5:10", "--param", "slow=40:50", "--heatmap", "fast"],
        &["X,Y"],
    );
    bad(
        &["--param", "data.lot_size=1:2"],
        &["only strategies, backtest and risk"],
    );
}
