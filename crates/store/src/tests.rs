//! Every operation against each test database (see `testing`).

use serde_json::json;

use crate::audit::BacktestPart;
use crate::registry::{retention_plan, ModelRecord, NewModel, Stage};
use crate::testing::databases;
use crate::tracking::RunStatus;
use crate::{migrate, Backend};

#[tokio::test]
async fn migrations_apply_once_and_reopening_is_harmless() {
    for db in databases().await {
        let s = &db.store;
        assert_eq!(migrate::applied(s).await.unwrap(), vec![1], "{}", db.name);
        // Running them again (as a second process opening the database
        // would) changes nothing.
        migrate::run(s).await.unwrap();
        assert_eq!(migrate::applied(s).await.unwrap(), vec![1]);
        assert_eq!(
            s.backend(),
            if db.name == "sqlite" {
                Backend::Sqlite
            } else {
                Backend::Postgres
            }
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn runs_params_tags_status_and_metric_series() {
    for db in databases().await {
        let s = &db.store;
        let e1 = s.experiment("ppo").await.unwrap();
        assert_eq!(s.experiment("ppo").await.unwrap(), e1, "{}: get or create", db.name);
        let params = json!({"lr": 0.0003, "agent": "ppo-lstm"});
        let run = s
            .start_run("ppo", "seed42", &params, &json!({"git": "abc"}))
            .await
            .unwrap();
        s.log_metrics(&run, &[("loss", 1, 0.5), ("return", 1, 2.0)])
            .await
            .unwrap();
        s.log_metrics(&run, &[("loss", 2, 0.25)]).await.unwrap();
        let r = s.run(&run).await.unwrap();
        assert_eq!(
            (r.status, r.params.clone(), r.experiment.as_str()),
            (RunStatus::Running, params, "ppo")
        );
        assert!(r.ended_ms.is_none());
        let loss = s.metric_history(&run, "loss").await.unwrap();
        assert_eq!(
            loss.iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(),
            vec![(1, 0.5), (2, 0.25)]
        );
        s.finish_run(&run, RunStatus::Finished).await.unwrap();
        let r = s.run(&run).await.unwrap();
        assert_eq!(r.status, RunStatus::Finished);
        assert!(r.ended_ms.unwrap() >= r.started_ms);
        let second = s.start_run("ppo", "seed43", &json!({}), &json!({})).await.unwrap();
        let all = s.runs("ppo").await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().any(|r| r.id == second));
        // Bad input is refused with a reason, not stored.
        assert!(s.log_metrics(&run, &[("loss", 3, f64::NAN)]).await.is_err());
        assert!(s.start_run("ppo", "x", &json!([1]), &json!({})).await.is_err());
        assert!(s
            .finish_run("nope", RunStatus::Failed)
            .await
            .unwrap_err()
            .to_string()
            .contains("no run"));
        assert!(s.experiment(" ").await.is_err());
        db.finish().await;
    }
}

#[tokio::test]
async fn model_versions_stages_and_promotion() {
    for db in databases().await {
        let s = &db.store;
        let meta = json!({"model": "ppo-lstm", "parameters": 1234});
        let new = |checksum: &'static str| NewModel {
            name: "lstm-daily",
            checksum,
            framework: "candle 0.11",
            metadata: &meta,
            location: "runs/x/best",
            run_id: None,
        };
        assert_eq!(s.register_model(&new("a")).await.unwrap(), 1, "{}", db.name);
        assert_eq!(s.register_model(&new("b")).await.unwrap(), 2);
        s.set_stage("lstm-daily", 1, Stage::Production).await.unwrap();
        s.set_stage("lstm-daily", 2, Stage::Production).await.unwrap();
        let versions = s.models(Some("lstm-daily")).await.unwrap();
        assert_eq!(
            versions.iter().map(|m| (m.version, m.stage)).collect::<Vec<_>>(),
            vec![(2, Stage::Production), (1, Stage::Archived)]
        );
        assert_eq!(s.model("lstm-daily", 1).await.unwrap().checksum, "a");
        assert_eq!(versions[0].metadata, meta);
        assert!(s.set_stage("lstm-daily", 9, Stage::Staging).await.is_err());
        assert!(Stage::parse("live").unwrap_err().to_string().contains("production"));
        db.finish().await;
    }
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_versions() {
    for db in databases().await {
        let meta = json!({});
        let mut handles = Vec::new();
        for k in 0..8 {
            let s = db.store.clone();
            let meta = meta.clone();
            handles.push(tokio::spawn(async move {
                let checksum = format!("c{k}");
                s.register_model(&NewModel {
                    name: "race",
                    checksum: &checksum,
                    framework: "f",
                    metadata: &meta,
                    location: "l",
                    run_id: None,
                })
                .await
                .unwrap()
            }));
        }
        let mut versions = Vec::new();
        for h in handles {
            versions.push(h.await.unwrap());
        }
        versions.sort();
        assert_eq!(versions, (1..=8).collect::<Vec<_>>(), "{}", db.name);
        db.finish().await;
    }
}

#[tokio::test]
async fn backtests_decisions_and_jobs() {
    for db in databases().await {
        let s = &db.store;
        let report = json!({"metrics": {"sharpe": 1.2}});
        let id = s
            .record_backtest(None, "sma_crossover", &report, &json!([]), &json!([1, 2]))
            .await
            .unwrap();
        assert_eq!(s.backtest_report(&id).await.unwrap(), report, "{}", db.name);
        assert!(s.backtest_report("none").await.is_err());
        let probs = json!([0.1, 0.2, 0.0, 0.0, 0.7]);
        s.record_decision("m", 3, "abc", "HOLD", 0.0, &probs, &json!({"asset_cap": "ok"}))
            .await
            .unwrap();
        s.record_decision("m", 3, "def", "BUY_LONG", 0.5, &probs, &json!({}))
            .await
            .unwrap();
        let d = s.decisions("m").await.unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].action.as_str(), d[0].model_version, d[0].probabilities.clone()),
            ("HOLD", 3, probs)
        );
        let job = s.enqueue_job("train", &json!({"agent": "hrm"})).await.unwrap();
        assert_eq!(s.job(&job).await.unwrap().status, "queued");
        s.update_job(&job, "running", &json!({"step": 10})).await.unwrap();
        let j = s.job(&job).await.unwrap();
        assert_eq!((j.status.as_str(), j.progress["step"].as_i64()), ("running", Some(10)));
        assert!(s.update_job("none", "x", &json!({})).await.is_err());
        db.finish().await;
    }
}

#[tokio::test]
async fn several_writers_share_one_sqlite_file() {
    // WAL and the busy timeout: two pools (as two processes would hold)
    // writing at once both succeed.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let a = crate::Store::open(&url).await.unwrap();
    let b = crate::Store::open(&url).await.unwrap();
    let run_a = a.start_run("e", "a", &json!({}), &json!({})).await.unwrap();
    let run_b = b.start_run("e", "b", &json!({}), &json!({})).await.unwrap();
    let write = |s: crate::Store, run: String| {
        tokio::spawn(async move {
            for step in 0..200 {
                s.log_metrics(&run, &[("x", step, step as f64)]).await.unwrap();
            }
        })
    };
    let (ha, hb) = (write(a.clone(), run_a.clone()), write(b.clone(), run_b.clone()));
    ha.await.unwrap();
    hb.await.unwrap();
    assert_eq!(a.metric_history(&run_b, "x").await.unwrap().len(), 200);
    assert_eq!(b.metric_history(&run_a, "x").await.unwrap().len(), 200);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&a.pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn listings_parts_and_pruning() {
    for db in databases().await {
        let s = &db.store;
        let a = s.start_run("e1", "a", &json!({}), &json!({})).await.unwrap();
        let b = s.start_run("e2", "b", &json!({}), &json!({})).await.unwrap();
        s.log_metrics(&a, &[("loss", 1, 0.5), ("reward", 1, 2.0)])
            .await
            .unwrap();
        let recent = s.recent_runs(10).await.unwrap();
        assert_eq!(recent.len(), 2, "{}", db.name);
        assert!(recent.iter().any(|r| r.id == b));
        assert_eq!(s.recent_runs(1).await.unwrap().len(), 1);
        assert_eq!(s.metric_keys(&a).await.unwrap(), vec!["loss", "reward"]);

        let id = s
            .record_backtest(
                Some(&a),
                "momentum",
                &json!({"x": 1}),
                &json!([{"pnl": 3}]),
                &json!([1.0]),
            )
            .await
            .unwrap();
        assert_eq!(
            s.backtest_part(&id, BacktestPart::Trades).await.unwrap(),
            json!([{"pnl": 3}])
        );
        assert_eq!(s.backtest_part(&id, BacktestPart::Equity).await.unwrap(), json!([1.0]));
        let listed = s.recent_backtests(5).await.unwrap();
        assert_eq!(
            (listed[0].id.as_str(), listed[0].run_id.as_deref()),
            (id.as_str(), Some(a.as_str()))
        );

        let meta = json!({});
        let m = NewModel {
            name: "m",
            checksum: "c",
            framework: "candle",
            metadata: &meta,
            location: "models/m/c",
            run_id: None,
        };
        s.register_model(&m).await.unwrap();
        s.register_model(&m).await.unwrap();
        s.mark_pruned("m", 1).await.unwrap();
        let v1 = s.model("m", 1).await.unwrap();
        assert_eq!((v1.location.as_str(), v1.stage), ("", Stage::Archived));
        assert!(s.mark_pruned("m", 7).await.is_err());
        s.set_stage("m", 2, Stage::Production).await.unwrap();
        assert_eq!(
            s.model_at_stage("m", Stage::Production).await.unwrap().unwrap().version,
            2
        );
        assert!(s.model_at_stage("m", Stage::Staging).await.unwrap().is_none());
        db.finish().await;
    }
}

#[test]
fn retention_keeps_best_staged_and_newest() {
    let record = |version: i64, stage: Stage, score: f64| ModelRecord {
        name: "m".into(),
        version,
        checksum: String::new(),
        framework: String::new(),
        metadata: json!({"score": score}),
        location: format!("models/m/{version}"),
        stage,
        run_id: None,
        created_ms: version,
    };
    let versions: Vec<ModelRecord> = (1..=8)
        .map(|v| {
            let stage = if v == 2 { Stage::Production } else { Stage::None };
            // Version 3 scores best.
            record(v, stage, if v == 3 { 9.0 } else { v as f64 / 10.0 })
        })
        .collect();
    let score = |m: &ModelRecord| m.metadata["score"].as_f64();
    // Keep 8, 7 (newest two), 3 (best), 2 (production).
    assert_eq!(retention_plan(&versions, 2, score), vec![1, 4, 5, 6]);
    // Nothing to prune when every version is within keep_last.
    assert!(retention_plan(&versions, 8, score).is_empty());
    // Already pruned versions are not pruned twice.
    let mut pruned = versions.clone();
    pruned[0].location.clear();
    assert_eq!(retention_plan(&pruned, 2, score), vec![4, 5, 6]);
    // Without scores, only stage and recency protect a version.
    assert_eq!(retention_plan(&versions, 2, |_| None), vec![1, 3, 4, 5, 6]);
}
