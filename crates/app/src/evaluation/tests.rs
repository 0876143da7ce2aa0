use std::path::Path;

use tradelab_agents::supervised::fit_logistic;
use tradelab_agents::trainer::Scoring;

use super::*;
use crate::markets::{normalisations, vocabulary};

const SYMBOL: &str = "nvda-1999-2014";

/// Default settings on the bundled price files, with small boosted trees
/// so the baseline fits quickly in a debug build.
fn settings(empty_final: &Path) -> Settings {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut s = Settings::default();
    s.data.raw_dir = root.join("data/raw");
    s.data.final_dir = empty_final.to_path_buf();
    s.gbt.trees = vec![10];
    s.gbt.depth = 2;
    s
}

/// A logistic regression fitted on the bundled file's train split, its
/// provenance filled in as `tradelab train` does.
fn trained(settings: &Settings) -> Box<dyn Agent + Send> {
    let mut target = settings.clone();
    target.env.actions = ActionSpace::Target;
    let series = load_series(&target, &[SYMBOL.into()], None, false).unwrap();
    let vocab = vocabulary(&series);
    let hashes: Vec<_> = series.iter().map(data_hash).collect();
    let markets = markets(series, &vocab, &target).unwrap();
    let (mut agent, _) = fit_logistic(
        &markets,
        &target.env_config(),
        &target.logreg,
        Scoring::from_settings(&target.ppo),
    )
    .unwrap();
    let p = &mut agent.provenance;
    p.vocabulary = vocab;
    p.features = markets[0].data.feature_names.clone();
    p.settings = serde_json::to_value(&target).unwrap();
    p.data = hashes;
    p.normalisation = normalisations(&markets);
    Box::new(agent)
}

/// Evaluates `agent` under `plan`, counting the reports handed out.
fn run(agent: &mut (dyn Agent + Send), current: &Settings, plan: &EvaluationPlan) -> (Evaluation, Vec<String>) {
    let mut settings = evaluation_settings(agent, current).unwrap();
    let mut written = Vec::new();
    let evaluation = evaluate(agent, &mut settings, &[], plan, false, &mut |out| {
        written.push(format!("{}/{}", out.folder.unwrap_or("."), out.report.model_used));
        assert_eq!(out.feeds.len(), 1);
        // Progress counts every report, to the total announced.
        assert_eq!(out.done, written.len());
        assert_eq!(
            out.total,
            plan.folds * 6,
            "the model, four rule baselines, boosted trees"
        );
        Ok(())
    })
    .unwrap();
    (evaluation, written)
}

#[test]
fn a_model_is_evaluated_on_its_test_split_beside_every_baseline_with_its_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let current = settings(dir.path());
    let mut agent = trained(&current);
    let plan = EvaluationPlan::default();
    let (evaluation, written) = run(agent.as_mut(), &current, &plan);
    assert_eq!(evaluation.kind, "logreg");
    assert_eq!(evaluation.runs.len(), 1, "one market, one fold");
    let r = &evaluation.runs[0];
    let names: Vec<&str> = r.baselines.iter().map(|b| b.model_used.as_str()).collect();
    for (name, rule) in names.iter().zip(COMPARED) {
        assert!(name.starts_with(rule), "the rule baselines in order: {names:?}");
    }
    assert_eq!(
        names.len(),
        5,
        "and the boosted trees (not a second logistic regression): {names:?}"
    );
    assert_eq!(written.len(), 6, "every report is handed out: {written:?}");
    assert_eq!(evaluation.reports().len(), 6);
    // Out of sample: the model's report covers the test split only.
    let test_start = &r.model.start_date;
    let hold = &r.baselines[0];
    assert_eq!((&hold.start_date, &hold.end_date), (test_start, &r.model.end_date));
    assert!(r.model.start_date.as_str() > "2010", "{}", r.model.start_date);
    // The stored statistics are the comparison's, with the deflated Sharpe ratio.
    let (s, st) = (&r.statistics, &r.stored_statistics);
    assert_eq!(st.sharpe, s.comparison.sharpe.sharpe);
    assert_eq!(st.sharpe_low, s.comparison.sharpe.low);
    assert_eq!(st.deflated_sharpe, Some(s.comparison.deflated_sharpe));
    assert_eq!(st.trials, Some(1));
    assert_eq!(st.sharpe_minus_benchmark, s.comparison.difference.map(|d| d.difference));
    assert!(st.sharpe_low <= st.sharpe && st.sharpe <= st.sharpe_high, "{st:?}");
    let (ret, _) = return_and_drawdown(&[100.0, 110.0]);
    assert!((ret - 10.0).abs() < 1e-9);
    assert!((s.model_return_pct - (r.model.portfolio_end / r.model.portfolio_start - 1.0) * 100.0).abs() < 1e-6);

    // The stored form carries the baselines' metrics, the statistics and the verdict.
    let stored = stored::stored_report(&evaluation, r, "logreg@1").unwrap();
    assert_eq!(stored["baselines"].as_array().unwrap().len(), 5);
    assert_eq!(stored["baselines"][0]["name"], "buy_and_hold");
    assert_eq!(stored["statistics"]["trials"], 1);
    assert!(stored["statistics"]["deflated_sharpe"].is_number());
    assert_eq!(stored["evaluation"]["model"], "logreg@1");
    assert_eq!(stored["evaluation"]["split"], "test");
    let verdict = stored["evaluation"]["verdict"].as_str().unwrap();
    assert!(verdict.starts_with("model vs buy-and-hold: Sharpe"), "{verdict}");
    assert_eq!(stored["evaluation"]["flat"], s.entries == 0);
    assert_eq!(stored::strategy_name("logreg@1"), "model logreg@1");

    // Deterministic: the same model and settings give the same figures.
    let (again, _) = run(agent.as_mut(), &current, &plan);
    assert_eq!(again.runs[0].model.equity_curve, r.model.equity_curve);
    assert_eq!(again.runs[0].stored_statistics.sharpe_high, st.sharpe_high);
}

#[test]
fn folds_split_the_period_and_more_trials_deflate_the_sharpe_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let current = settings(dir.path());
    let mut agent = trained(&current);
    let plan = EvaluationPlan {
        folds: 2,
        trials: 20,
        trial_sharpe_std: 0.5,
        ..EvaluationPlan::default()
    };
    let (evaluation, written) = run(agent.as_mut(), &current, &plan);
    assert_eq!(evaluation.runs.len(), 2);
    assert!(written.iter().all(|w| w.starts_with("fold-")), "{written:?}");
    let (a, b) = (&evaluation.runs[0].model, &evaluation.runs[1].model);
    assert!(
        a.end_date < b.start_date,
        "consecutive folds: {}..{} then {}..{}",
        a.start_date,
        a.end_date,
        b.start_date,
        b.end_date
    );
    for r in &evaluation.runs {
        let st = &r.stored_statistics;
        assert_eq!(st.trials, Some(20));
        assert!(
            st.deflated_sharpe.unwrap() <= st.probability_sharpe_above_zero + 1e-12,
            "twenty trials never make a Sharpe ratio more convincing: {st:?}"
        );
        assert!(r.statistics.run.contains("(fold "), "{}", r.statistics.run);
    }
}

#[test]
fn plans_that_cannot_give_honest_figures_are_refused() {
    let refused = |edit: &dyn Fn(&mut EvaluationPlan)| {
        let mut p = EvaluationPlan::default();
        edit(&mut p);
        p.check().unwrap_err().to_string()
    };
    assert!(refused(&|p| p.folds = 0).contains("--folds"));
    assert!(refused(&|p| p.trials = 0).contains("--trials"));
    assert!(refused(&|p| p.trials = 5).contains("--trial-sharpe-std"));
    assert!(refused(&|p| {
        p.portfolio = true;
        p.folds = 2
    })
    .contains("drop --folds"));
    assert_eq!(parse_split("validation").unwrap(), Split::Validation);
    assert!(parse_split("train")
        .unwrap_err()
        .to_string()
        .contains("use test or validation"));

    // A model that never trades is called flat, whatever the figures; one
    // that trades is judged on the test of the difference.
    let rising: Vec<f64> = (0..300)
        .map(|i| 100.0 + i as f64 * 0.1 + (i % 7) as f64 * 0.05)
        .collect();
    let flat = vec![100.0; 300];
    let boot = BootstrapSettings {
        resamples: 200,
        ..Default::default()
    };
    let statistics = |equity: &[f64], entries: usize| RunStatistics {
        run: "x".into(),
        entries,
        closed_trades: 0,
        short_sample: false,
        model_return_pct: return_and_drawdown(equity).0,
        model_max_drawdown_pct: return_and_drawdown(equity).1,
        benchmark_return_pct: return_and_drawdown(&rising).0,
        benchmark_max_drawdown_pct: 0.0,
        comparison: compare(equity, &rising, 252.0, 1, 0.0, &boot),
        sampled: None,
    };
    let v = statistics(&flat, 0).verdict();
    assert!(v.ends_with("flat: no evidence of skill"), "{v}");
    let v = statistics(&flat, 3).verdict();
    assert!(v.contains("worse than buy-and-hold"), "{v}");
    let v = statistics(&rising, 1).verdict();
    assert!(v.contains("not distinguishable from buy-and-hold (p=1.000)"), "{v}");
}
