//! Every operation against each test database (see `testing`).

use serde_json::json;

use crate::registry::{NewModel, Stage};
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
