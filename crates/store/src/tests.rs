//! Every operation against each test database (see `testing`).

use serde_json::json;

use crate::audit::BacktestPart;
use crate::jobs::{Claim, JobStatus};
use crate::registry::{retention_plan, ModelRecord, NewModel, Stage};
use crate::testing::databases;
use crate::tracking::RunStatus;
use crate::{migrate, Backend};

#[tokio::test]
async fn migrations_apply_once_and_reopening_is_harmless() {
    for db in databases().await {
        let s = &db.store;
        assert_eq!(
            migrate::applied(s).await.unwrap(),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9],
            "{}",
            db.name
        );
        // Running them again (as a second process opening the database
        // would) changes nothing.
        migrate::run(s).await.unwrap();
        assert_eq!(migrate::applied(s).await.unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
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
        let batch: Vec<crate::audit::NewDecision> = (0..300)
            .map(|i| crate::audit::NewDecision {
                model_name: "m".into(),
                model_version: 4,
                inputs_sha256: format!("h{i}"),
                action: "HOLD".into(),
                quantity: 0.0,
                probabilities: probs.clone(),
                risk_checks: json!({}),
                caller: Some(format!("ada via c{i}")),
            })
            .collect();
        let ids = s.record_decisions(&batch).await.unwrap();
        assert_eq!(ids.len(), 300);
        let d = s.decisions("m").await.unwrap();
        assert_eq!(d.len(), 302);
        assert_eq!(d[0].caller, None);
        assert_eq!(d[301].caller.as_deref(), Some("ada via c299"));
        // The trail keeps the order decisions were appended in.
        assert_eq!(
            (d[2].inputs_sha256.as_str(), d[301].inputs_sha256.as_str()),
            ("h0", "h299")
        );
        assert_eq!(d[2].id, ids[0]);
        assert_eq!(
            (d[0].action.as_str(), d[0].model_version, d[0].probabilities.clone()),
            ("HOLD", 3, probs)
        );
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
        // A model's evaluations, by their exact strategy name.
        let evaluation = s
            .record_backtest(None, "model m@1", &json!({}), &json!([]), &json!([]))
            .await
            .unwrap();
        let of = |name: &'static str| {
            let s = &s;
            async move {
                s.backtests_of(Some(name), 5)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|b| b.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(of("model m@1").await, vec![evaluation.clone()], "{}", db.name);
        assert_eq!(of("momentum").await, vec![id.clone()]);
        assert!(of("model m@").await.is_empty(), "exact names only");
        assert_eq!(s.backtests_of(None, 5).await.unwrap().len(), 2);

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
        assert_eq!(s.newest_version("m", None).await.unwrap(), Some(2));
        assert_eq!(s.newest_version("m", Some(Stage::Production)).await.unwrap(), Some(2));
        assert_eq!(s.newest_version("m", Some(Stage::Staging)).await.unwrap(), None);
        assert_eq!(s.newest_version("none", None).await.unwrap(), None);
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

#[tokio::test]
async fn jobs_are_claimed_once_leased_and_taken_over_when_the_lease_lapses() {
    for db in databases().await {
        let s = &db.store;
        let job = s.enqueue_job("train", &json!({"agent": "hrm"})).await.unwrap();
        let j = s.job(&job).await.unwrap();
        assert_eq!(
            (j.status, j.attempts, j.worker.clone()),
            (JobStatus::Queued, 0, None),
            "{}",
            db.name
        );
        assert_eq!(
            s.claim_job(&job, "w1", 60_000).await.unwrap(),
            Claim::Claimed { attempt: 1 }
        );
        // A second delivery of the same job while w1's lease is fresh.
        assert_eq!(s.claim_job(&job, "w2", 60_000).await.unwrap(), Claim::Busy);
        s.set_job_progress(&job, &json!({"step": 10})).await.unwrap();
        assert_eq!(s.heartbeat_job(&job, "w1").await.unwrap(), Some(JobStatus::Running));
        assert_eq!(s.heartbeat_job(&job, "w2").await.unwrap(), None);
        // w1 stops heartbeating: with a lease of 0 ms, w2 takes over (once
        // the clock has moved past w1's last heartbeat).
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(s.claim_job(&job, "w2", 0).await.unwrap(), Claim::Claimed { attempt: 2 });
        assert_eq!(s.heartbeat_job(&job, "w1").await.unwrap(), None, "w1 lost it");
        assert!(!s.finish_job(&job, "w1", JobStatus::Finished, None).await.unwrap());
        s.set_job_result(&job, &json!({"run": "r"})).await.unwrap();
        assert!(s.finish_job(&job, "w2", JobStatus::Finished, None).await.unwrap());
        let j = s.job(&job).await.unwrap();
        assert_eq!(
            (j.status, j.attempts, j.worker.as_deref()),
            (JobStatus::Finished, 2, Some("w2"))
        );
        assert_eq!(
            (j.progress["step"].as_i64(), j.result.clone()),
            (Some(10), Some(json!({"run": "r"})))
        );
        assert_eq!(
            s.claim_job(&job, "w3", 0).await.unwrap(),
            Claim::Ended(JobStatus::Finished)
        );
        assert!(s.finish_job(&job, "w2", JobStatus::Running, None).await.is_err());

        // A runaway error message (a 200 MB field echoed) is kept bounded,
        // with its end, where the cause is.
        let failing = s.enqueue_job("train", &json!({})).await.unwrap();
        s.claim_job(&failing, "w1", 60_000).await.unwrap();
        let huge = format!("{}the cause", "x".repeat(1 << 20));
        s.finish_job(&failing, "w1", JobStatus::Failed, Some(&huge))
            .await
            .unwrap();
        let kept = s.job(&failing).await.unwrap().error.unwrap();
        assert!(kept.len() <= crate::jobs::MAX_ERROR_BYTES + 40, "{}", kept.len());
        assert!(kept.starts_with("[") && kept.ends_with("the cause"), "{}", &kept[..60]);

        // Cancelling: a queued job at once; a running one through its worker.
        let queued = s.enqueue_job("backtest", &json!({})).await.unwrap();
        assert_eq!(s.request_cancel(&queued).await.unwrap(), JobStatus::Cancelled);
        assert_eq!(
            s.claim_job(&queued, "w1", 0).await.unwrap(),
            Claim::Ended(JobStatus::Cancelled)
        );
        let running = s.enqueue_job("backtest", &json!({})).await.unwrap();
        s.claim_job(&running, "w1", 60_000).await.unwrap();
        assert_eq!(s.request_cancel(&running).await.unwrap(), JobStatus::CancelRequested);
        assert_eq!(
            s.heartbeat_job(&running, "w1").await.unwrap(),
            Some(JobStatus::CancelRequested)
        );
        s.finish_job(&running, "w1", JobStatus::Cancelled, None).await.unwrap();
        let failed = s.enqueue_job("train", &json!({})).await.unwrap();
        s.claim_job(&failed, "w1", 60_000).await.unwrap();
        s.finish_job(&failed, "w1", JobStatus::Failed, Some("no data"))
            .await
            .unwrap();
        assert_eq!(s.job(&failed).await.unwrap().error.as_deref(), Some("no data"));
        assert_eq!(s.recent_jobs(10).await.unwrap().len(), 5);
        let counts = s.job_counts().await.unwrap();
        assert!(
            counts.contains(&(JobStatus::Cancelled, 2)) && counts.contains(&(JobStatus::Failed, 2)),
            "{counts:?}"
        );
        assert!(s.running_jobs().await.unwrap().is_empty());
        assert!(s.job("none").await.is_err());
        db.finish().await;
    }
}

#[tokio::test]
async fn of_many_workers_claiming_at_once_exactly_one_wins() {
    for db in databases().await {
        let job = db.store.enqueue_job("train", &json!({})).await.unwrap();
        let claims: Vec<_> = (0..8)
            .map(|w| {
                let (s, job) = (db.store.clone(), job.clone());
                tokio::spawn(async move { s.claim_job(&job, &format!("w{w}"), 60_000).await })
            })
            .collect();
        let mut won = 0;
        for c in claims {
            match c.await.unwrap() {
                Ok(Claim::Claimed { .. }) => won += 1,
                Ok(Claim::Busy) => {}
                // SQLite may refuse a racing writer outright; that is a lost claim too.
                Ok(other) => panic!("{other:?}"),
                Err(e) => assert!(db.name == "sqlite", "{e}"),
            }
        }
        assert_eq!(won, 1, "{}", db.name);
        db.finish().await;
    }
}

#[tokio::test]
async fn processes_opening_a_new_database_at_once_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { crate::Store::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opens {
        stores.push(o.await.unwrap().expect("every open succeeds"));
    }
    let applied = migrate::applied(&stores[0]).await.unwrap();
    assert_eq!(applied, (1..=migrate::MIGRATIONS.len() as i64).collect::<Vec<_>>());
}

#[tokio::test]
async fn large_metric_batches_are_stored_whole_or_not_at_all() {
    for db in databases().await {
        let s = &db.store;
        let run = s.start_run("e", "big", &json!({}), &json!({})).await.unwrap();
        let points: Vec<(&str, i64, f64)> = (0..2500).map(|i| ("x", i, i as f64)).collect();
        s.log_metrics(&run, &points).await.unwrap();
        let series = s.metric_history(&run, "x").await.unwrap();
        assert_eq!(series.len(), 2500, "{}", db.name);
        assert_eq!((series[1234].step, series[1234].value), (1234, 1234.0));
        // A non-finite value anywhere refuses the whole batch.
        let mut bad = points.clone();
        bad[2400].2 = f64::NAN;
        assert!(s.log_metrics(&run, &bad).await.is_err());
        assert_eq!(s.metric_history(&run, "x").await.unwrap().len(), 2500);
        s.log_metrics(&run, &[]).await.unwrap();
        db.finish().await;
    }
}

#[tokio::test]
async fn only_metric_points_skip_the_wal_flush_on_postgres() {
    for db in databases().await {
        if db.store.backend() != Backend::Postgres {
            continue;
        }
        let show = |pool: &sqlx::AnyPool| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, String>("SHOW synchronous_commit")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(show(&db.store.metrics_pool).await, "off");
        assert_eq!(
            show(&db.store.pool).await,
            "on",
            "runs, models, decisions and jobs commit durably"
        );
        db.finish().await;
    }
}

/// The trading journal's store commits without waiting for the disk; the
/// default store waits, on both databases.
#[tokio::test]
async fn a_process_crash_durable_store_skips_the_disk_wait_and_the_default_does_not() {
    use crate::{Durability, Store};
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("j.db").display());
    let mut urls = vec![(sqlite, None)];
    if let Some(base) = crate::testing::postgres_url() {
        let (url, schema) = crate::testing::postgres_schema_url(&base).await;
        urls.push((url, Some((base, schema))));
    }
    for (url, cleanup) in urls {
        let setting = |store: Store| async move {
            let pool = store.pool.clone();
            let value = match store.backend() {
                // 2 is FULL, 1 NORMAL.
                Backend::Sqlite => sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    .to_string(),
                Backend::Postgres => sqlx::query_scalar::<_, String>("SHOW synchronous_commit")
                    .fetch_one(&pool)
                    .await
                    .unwrap(),
            };
            store.close().await;
            value
        };
        let durable = setting(Store::open(&url).await.unwrap()).await;
        let journal = setting(Store::open_with(&url, Durability::ProcessCrash).await.unwrap()).await;
        assert!(
            matches!((durable.as_str(), journal.as_str()), ("2", "1") | ("on", "off")),
            "{url}: {durable} / {journal}"
        );
        if let Some((base, schema)) = cleanup {
            crate::testing::drop_schema(&base, &schema).await;
        }
    }
}

/// Neon readiness: `sslmode=verify-full` verifies the server's certificate
/// against the given root and its name against the host asked for. Runs
/// where `.ci/run` found the local server speaking TLS with a certificate
/// for `localhost` (TRADELAB_TEST_POSTGRES_TLS_ROOT names its issuer).
#[tokio::test]
async fn verify_full_checks_the_certificate_and_the_host_name() {
    let (Some(base), Ok(root)) = (
        crate::testing::postgres_url(),
        std::env::var("TRADELAB_TEST_POSTGRES_TLS_ROOT"),
    ) else {
        eprintln!("skipped: TLS test (set TRADELAB_TEST_POSTGRES_URL and TRADELAB_TEST_POSTGRES_TLS_ROOT)");
        return;
    };
    let (url, schema) = crate::testing::postgres_schema_url(&base).await;
    let at = |host: &str, params: &str| url.replace("127.0.0.1", host) + "&" + params;
    let ok = crate::Store::open(&at("localhost", &format!("sslmode=verify-full&sslrootcert={root}")))
        .await
        .expect("verify-full against the right root and name connects");
    let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&ok.pool)
        .await
        .unwrap();
    assert!(encrypted, "the session is TLS");
    ok.close().await;
    // The public roots do not vouch for a local certificate.
    let e = crate::Store::open(&at("localhost", "sslmode=verify-full"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.to_lowercase().contains("certificate") || e.to_lowercase().contains("tls"),
        "{e}"
    );
    // The right root, the wrong name: the certificate is for localhost.
    let e = crate::Store::open(&at("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={root}")))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.to_lowercase().contains("certificate") || e.to_lowercase().contains("name"),
        "{e}"
    );
    crate::testing::drop_schema(&base, &schema).await;
}

#[tokio::test]
async fn oauth_users_clients_codes_and_token_families() {
    use crate::oauth::{ClientRecord, CodeRedemption, DevicePoll, NewCode, RefreshUse};
    for db in databases().await {
        let s = &db.store;
        let n = db.name;
        // Users: unique names, disable revokes their grants.
        let ada = s.create_user("ada", "$argon2id$x", "researcher", true).await.unwrap();
        assert!(ada.must_change_password);
        let dup = s
            .create_user("ada", "h", "viewer", false)
            .await
            .unwrap_err()
            .to_string();
        assert!(dup.contains("already exists"), "{n}: {dup}");
        assert_eq!(s.active_admins().await.unwrap(), 0);
        s.create_user("root", "h", "admin", false).await.unwrap();
        assert_eq!(s.active_admins().await.unwrap(), 1);
        s.set_password(&ada.id, "$argon2id$y", false).await.unwrap();
        let ada = s.user_by_name("ada").await.unwrap().unwrap();
        assert_eq!(
            (ada.password_hash.as_str(), ada.must_change_password),
            ("$argon2id$y", false)
        );

        // Clients.
        let client = ClientRecord {
            client_id: "web".into(),
            name: "Dashboard".into(),
            secret_hash: None,
            redirect_uris: vec!["https://app/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            scopes: "data:read train".into(),
            resource_server: false,
            created_ms: 1,
        };
        s.create_client(&client).await.unwrap();
        assert!(s
            .create_client(&client)
            .await
            .unwrap_err()
            .to_string()
            .contains("already exists"));
        assert_eq!(s.client("web").await.unwrap().unwrap(), client);
        assert_eq!(s.clients().await.unwrap().len(), 1);

        // A code is spent once; its replay is reported with its grant.
        let code = NewCode {
            code_hash: "c1",
            client_id: "web",
            user_id: &ada.id,
            redirect_uri: "https://app/cb",
            scope: "data:read",
            code_challenge: Some("chal"),
            expires_ms: i64::MAX,
        };
        s.store_code(&code).await.unwrap();
        let CodeRedemption::Fresh(first) = s.redeem_code("c1").await.unwrap() else {
            panic!("{n}: first redemption")
        };
        assert_eq!(first.code_challenge.as_deref(), Some("chal"));
        let grant = s.create_grant("web", Some(&ada.id), "data:read").await.unwrap();
        s.attach_grant_to_code("c1", &grant).await.unwrap();
        match s.redeem_code("c1").await.unwrap() {
            CodeRedemption::Reused(again) => assert_eq!(again.grant_id.as_deref(), Some(grant.as_str())),
            other => panic!("{n}: replay gave {other:?}"),
        }
        assert_eq!(s.redeem_code("nope").await.unwrap(), CodeRedemption::Unknown);

        // Refresh rotation: each token once; a replay revokes the family.
        s.store_refresh("r1", &grant, i64::MAX).await.unwrap();
        assert!(matches!(s.use_refresh("r1").await.unwrap(), RefreshUse::Fresh(g) if g.id == grant));
        s.store_refresh("r2", &grant, i64::MAX).await.unwrap();
        assert!(!s.access_revoked(&grant, "jti-1").await.unwrap());
        assert_eq!(
            s.use_refresh("r1").await.unwrap(),
            RefreshUse::Reused {
                grant_id: grant.clone()
            }
        );
        assert!(s.access_revoked(&grant, "jti-1").await.unwrap(), "{n}: family revoked");
        assert_eq!(
            s.use_refresh("r2").await.unwrap(),
            RefreshUse::Dead,
            "{n}: r2 died with its family"
        );
        assert_eq!(s.use_refresh("r3").await.unwrap(), RefreshUse::Unknown);

        // One access token revoked alone; an unknown grant counts as revoked.
        let g2 = s.create_grant("web", Some(&ada.id), "data:read").await.unwrap();
        s.revoke_access("jti-2", i64::MAX).await.unwrap();
        s.revoke_access("jti-2", i64::MAX).await.unwrap();
        assert!(s.access_revoked(&g2, "jti-2").await.unwrap());
        assert!(!s.access_revoked(&g2, "jti-3").await.unwrap());
        assert!(s.access_revoked("no-grant", "jti-3").await.unwrap());
        // Disabling a user revokes their live grants; removing a client, its.
        s.set_user_disabled("ada", true).await.unwrap();
        assert!(s.access_revoked(&g2, "jti-3").await.unwrap(), "{n}: disabled user");
        assert!(s.user_by_name("ada").await.unwrap().unwrap().disabled_ms.is_some());
        let g3 = s.create_grant("web", None, "data:read").await.unwrap();
        s.remove_client("web").await.unwrap();
        assert!(s.access_revoked(&g3, "x").await.unwrap());
        assert!(s.remove_client("web").await.is_err());

        // Signing keys: rotation retires the old, which stays until dropped.
        s.rotate_signing_key("k1", "EdDSA", &[1, 2]).await.unwrap();
        s.rotate_signing_key("k2", "EdDSA", &[3]).await.unwrap();
        let keys = s.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys
            .iter()
            .any(|k| k.kid == "k1" && k.retired_ms.is_some() && k.private_key == [1, 2]));
        assert!(keys.iter().any(|k| k.kid == "k2" && k.retired_ms.is_none()));
        s.reseal_signing_key("k1", &[9, 9, 9]).await.unwrap();
        let keys = s.signing_keys().await.unwrap();
        assert!(keys.iter().any(|k| k.kid == "k1" && k.private_key == [9, 9, 9]));
        assert!(keys.iter().any(|k| k.kid == "k2" && k.private_key == [3]));
        assert_eq!(s.drop_retired_keys(i64::MAX).await.unwrap(), 1);

        // Expired codes are purged; live ones stay.
        s.create_device_code("old", "BBBB-BBBB", "cli", "data:read", 1_000)
            .await
            .unwrap();
        let purged = s.purge_expired_codes(2_000).await.unwrap();
        assert!(purged >= 1, "{purged}");
        assert_eq!(s.purge_expired_codes(2_000).await.unwrap(), 0);

        // Device codes: pending, slow down, approved once.
        s.create_device_code("d1", "BCDF-GHJK", "cli", "data:read", i64::MAX)
            .await
            .unwrap();
        assert_eq!(s.poll_device("d1", 0).await.unwrap(), DevicePoll::Pending);
        assert_eq!(s.poll_device("d1", 60_000).await.unwrap(), DevicePoll::SlowDown);
        assert!(s.pending_device("BCDF-GHJK").await.unwrap().is_some());
        assert!(s.decide_device("BCDF-GHJK", "u1", true).await.unwrap());
        assert!(
            !s.decide_device("BCDF-GHJK", "u1", false).await.unwrap(),
            "{n}: decided once"
        );
        assert!(
            matches!(s.poll_device("d1", 0).await.unwrap(), DevicePoll::Approved { user_id, .. } if user_id == "u1")
        );
        assert_eq!(s.poll_device("d1", 0).await.unwrap(), DevicePoll::Expired, "{n}: spent");
        s.create_device_code("d2", "ZZZZ-ZZZZ", "cli", "", 0).await.unwrap();
        assert_eq!(s.poll_device("d2", 0).await.unwrap(), DevicePoll::Expired);
        assert_eq!(s.poll_device("d3", 0).await.unwrap(), DevicePoll::Unknown);
        db.finish().await;
    }
}

#[tokio::test]
async fn trading_sessions_lease_their_account_and_keep_orders_once() {
    use crate::trading::{SessionStatus, TradingEventRecord, TradingOrderRecord};
    for db in databases().await {
        let s = &db.store;
        let spec = json!({"symbols": ["nvda"]});
        s.start_trading_session("s1", "paper:main", "m", &spec, 30_000)
            .await
            .unwrap();
        // A second session on the same account is refused while s1 lives,
        // and the error names the holder.
        let busy = s
            .start_trading_session("s2", "paper:main", "m", &spec, 30_000)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            busy.contains("session s1") && busy.contains("paper:main"),
            "{}: {busy}",
            db.name
        );
        // Another account is free.
        s.start_trading_session("s3", "paper:other", "m", &spec, 30_000)
            .await
            .unwrap();
        // s1 is alive: it cannot be resumed by a second process.
        assert!(s.resume_trading_session("s1", 30_000).await.is_err());
        // Orders are written once per client order id.
        let order = TradingOrderRecord {
            client_order_id: "s1-nvda-100".into(),
            session_id: "s1".into(),
            instrument: "nvda".into(),
            bar_ts: 100,
            action: "BUY_LONG".into(),
            qty: Some(3.0),
            status: "intended".into(),
            detail: None,
        };
        assert!(s.record_trading_order(&order).await.unwrap());
        assert!(!s.record_trading_order(&order).await.unwrap(), "{}", db.name);
        s.set_trading_order_status("s1-nvda-100", "submitted", Some("ok"))
            .await
            .unwrap();
        let orders = s.trading_orders("s1").await.unwrap();
        assert_eq!(orders.len(), 1);
        assert_eq!((orders[0].status.as_str(), orders[0].qty), ("submitted", Some(3.0)));
        let nan = TradingOrderRecord {
            client_order_id: "x".into(),
            qty: Some(f64::NAN),
            ..order.clone()
        };
        assert!(s.record_trading_order(&nan).await.is_err());
        // Checkpoints and events round-trip.
        s.checkpoint_trading_session("s1", &json!({"cash": 1.5})).await.unwrap();
        let ev = |seq| TradingEventRecord {
            seq,
            at_ms: 5,
            bar_ts: Some(100),
            kind: "breaker".into(),
            detail: json!({"seq": seq}),
        };
        s.record_trading_events("s1", &[ev(1), ev(2)]).await.unwrap();
        s.record_trading_events("s1", &[ev(2), ev(3)]).await.unwrap();
        let events = s.trading_events("s1", 1, 10).await.unwrap();
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        // Stopped, it may be resumed; resumed, it holds the account again.
        s.end_trading_session("s1", SessionStatus::Stopped, "ctrl-c")
            .await
            .unwrap();
        s.start_trading_session("s4", "paper:main", "m", &spec, 30_000)
            .await
            .unwrap();
        assert!(
            s.resume_trading_session("s1", 30_000).await.is_err(),
            "s4 holds the account now"
        );
        s.end_trading_session("s4", SessionStatus::Finished, "feed ended")
            .await
            .unwrap();
        let back = s.resume_trading_session("s1", 30_000).await.unwrap();
        assert_eq!(
            (back.status, back.checkpoint),
            (SessionStatus::Running, Some(json!({"cash": 1.5})))
        );
        assert!(
            s.resume_trading_session("s4", 30_000).await.is_err(),
            "a finished session stays finished"
        );
        // A session whose heartbeat went stale (killed) no longer holds it.
        s.start_trading_session("s5", "paper:lost", "m", &spec, 30_000)
            .await
            .unwrap();
        assert!(s
            .start_trading_session("s6", "paper:lost", "m", &spec, -1)
            .await
            .is_ok());
        s.checkpoint_trading_session("s4", &json!({})).await.unwrap_err();
        db.finish().await;
    }
}

#[tokio::test]
async fn the_audit_trail_keeps_each_event_once_and_pages_through_filters() {
    use crate::audit_events::{AuditCursor, AuditEventRow, AuditFilter};
    let event = |session: &str, seq: i64, kind: &str, at_ms: i64, instrument: &str| AuditEventRow {
        session_id: session.into(),
        seq,
        kind: kind.into(),
        at_ms,
        bar_ts: Some(at_ms - 1),
        instrument: Some(instrument.into()),
        model: Some("m".into()),
        action: (kind == "decision").then(|| "BUY_LONG".into()),
        event: format!("{{\"seq\":{seq}}}"),
        hash: format!("h{seq}"),
    };
    for db in databases().await {
        let s = &db.store;
        let mut batch: Vec<AuditEventRow> = (1..=30)
            .map(|i| event("a", i, if i % 3 == 0 { "fill" } else { "decision" }, 1000 + i, "X"))
            .collect();
        batch.extend((1..=5).map(|i| event("b", i, "decision", 1000 + i, "Y")));
        assert_eq!(s.record_audit_events(&batch).await.unwrap(), 35, "{}", db.name);
        // Delivered again (at least once): stored once.
        assert_eq!(s.record_audit_events(&batch[10..20]).await.unwrap(), 0, "{}", db.name);
        assert_eq!(s.audit_head("a").await.unwrap(), Some((30, "h30".into())));
        assert_eq!(s.audit_head("none").await.unwrap(), None);

        // Decisions of session a, 7 to a page, newest first, all of them once.
        let filter = AuditFilter {
            session_id: Some("a".into()),
            kind: Some("decision".into()),
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = s.audit_events(&filter, cursor.as_ref(), 7).await.unwrap();
            if page.is_empty() {
                break;
            }
            cursor = Some(AuditCursor::decode(&AuditCursor::after(page.last().unwrap()).encode()).unwrap());
            seen.extend(page.into_iter().map(|e| e.seq));
        }
        let expected: Vec<i64> = (1..=30).rev().filter(|i| i % 3 != 0).collect();
        assert_eq!(seen, expected, "{}", db.name);

        // Instrument and time range.
        let filter = AuditFilter {
            instrument: Some("Y".into()),
            from_ms: Some(1002),
            to_ms: Some(1005),
            ..Default::default()
        };
        let got: Vec<i64> = s
            .audit_events(&filter, None, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(got, [4, 3, 2], "{}", db.name);

        let one = s.audit_event("a", 4).await.unwrap();
        assert_eq!((one.kind.as_str(), one.event.as_str()), ("decision", "{\"seq\":4}"));
        assert!(s
            .audit_event("a", 99)
            .await
            .unwrap_err()
            .to_string()
            .contains("no event 99"));
        let after: Vec<i64> = s
            .session_audit_events("a", 27, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(after, [28, 29, 30]);
        let sessions = s.audit_sessions(10).await.unwrap();
        assert_eq!(sessions, [("a".to_string(), 30, 1030), ("b".to_string(), 5, 1005)]);
        assert!(AuditCursor::decode("12.x").is_err() && AuditCursor::decode("a.b.c").is_err());

        // Explanations: one per decision (the first kept), and the walk
        // over decisions waiting for one, oldest first, after a cursor.
        use crate::explanations::ExplanationRow;
        let explanation = |session: &str, seq: i64, text: &str| ExplanationRow {
            session_id: session.into(),
            seq,
            at_ms: 1000 + seq,
            model: "m".into(),
            weights_sha256: "w".into(),
            explanation: format!("{{\"text\":\"{text}\"}}"),
            summary: text.into(),
            explained_ms: 1,
        };
        let waiting = |rows: Vec<AuditEventRow>| -> Vec<(String, i64)> {
            rows.into_iter().map(|e| (e.session_id, e.seq)).collect()
        };
        let first = waiting(s.unexplained_decisions(None, 3).await.unwrap());
        assert_eq!(
            first,
            [("a".into(), 1), ("b".into(), 1), ("a".into(), 2)],
            "{}",
            db.name
        );
        let done = [
            explanation("a", 1, "one"),
            explanation("a", 2, "two"),
            explanation("b", 2, "b2"),
        ];
        assert_eq!(s.record_explanations(&done).await.unwrap(), 3);
        assert_eq!(s.record_explanations(&[explanation("a", 1, "again")]).await.unwrap(), 0);
        assert_eq!(s.explanation("a", 1).await.unwrap().unwrap().summary, "one");
        assert_eq!(s.explanation("a", 3).await.unwrap(), None);
        let archived: Vec<i64> = s
            .session_explanations("a", 1, 30, 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(archived, [2], "after 1, through 30");
        let next = waiting(s.unexplained_decisions(Some(&(1001, "b".into(), 1)), 3).await.unwrap());
        assert_eq!(next, [("b".into(), 3), ("a".into(), 4), ("b".into(), 4)], "{}", db.name);
        assert_eq!(
            waiting(s.unexplained_decisions(None, 100).await.unwrap()).len(),
            20 + 5 - 3,
            "fills are not decisions"
        );

        // Retention: the events before the cutoff archived and removed; on
        // PostgreSQL by dropping whole months. Session c's events fall in
        // two months (2026-11 and 2026-12); the cutoff is 2026-12-01.
        use crate::audit_events::AuditArchive;
        let month = |d: i64| tradelab_core::time::days_from_civil(2026, 11, 1) * 86_400_000 + d * 86_400_000;
        let later: Vec<AuditEventRow> = (1..=6).map(|i| event("c", i, "fill", month(i * 10), "Z")).collect();
        s.record_audit_events(&later).await.unwrap();
        let cutoff = tradelab_core::time::days_from_civil(2026, 12, 1) * 86_400_000;
        assert_eq!(
            s.audit_sessions_before(cutoff).await.unwrap(),
            [("a".to_string(), 30), ("b".to_string(), 5), ("c".to_string(), 2)]
        );
        assert_eq!(s.audit_archived_head("c").await.unwrap(), None);
        let archives: Vec<AuditArchive> = [("a", 30), ("b", 5), ("c", 2)]
            .iter()
            .map(|(session, through)| AuditArchive {
                session_id: session.to_string(),
                through_seq: *through,
                head_hash: format!("h{through}"),
                file: format!("{session}/1-{through}.jsonl.zst"),
                sha256: "ff".into(),
                events: *through,
            })
            .collect();
        let removed = s.finish_audit_retention(&archives, cutoff).await.unwrap();
        assert_eq!(removed, 30 + 5 + 2, "{}", db.name);
        assert_eq!(s.audit_archived_head("c").await.unwrap(), Some((2, "h2".into())));
        let left: Vec<i64> = s
            .session_audit_events("c", 0, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(left, [3, 4, 5, 6], "{}", db.name);
        assert!(s.session_audit_events("a", 0, 100).await.unwrap().is_empty());
        assert_eq!(
            s.explanation("a", 1).await.unwrap(),
            None,
            "explanations go with their decisions"
        );
        // New events still land (in a month whose partition is made then).
        assert_eq!(
            s.record_audit_events(&[event("c", 7, "fill", month(70), "Z")])
                .await
                .unwrap(),
            1
        );
        db.finish().await;
    }
}

#[tokio::test]
async fn a_jobs_log_is_numbered_across_attempts_read_after_a_line_and_bounded() {
    use crate::job_logs::{stream, MAX_LINE_BYTES};
    for db in databases().await {
        let s = &db.store;
        let job = s.enqueue_job("train", &json!({})).await.unwrap();
        assert!(s.job_log(&job, 0, 100).await.unwrap().is_empty(), "{}", db.name);
        s.append_job_log(
            &job,
            1,
            &[(10, stream::WORKER, "started"), (11, stream::STDOUT, "run r1")],
        )
        .await
        .unwrap();
        s.append_job_log(&job, 1, &[]).await.unwrap();
        // A second attempt continues the numbering.
        let long = "é".repeat(MAX_LINE_BYTES);
        s.append_job_log(&job, 2, &[(20, stream::STDERR, &long), (21, stream::STDOUT, "done")])
            .await
            .unwrap();
        let all = s.job_log(&job, 0, 100).await.unwrap();
        assert_eq!(
            all.iter().map(|l| l.seq).collect::<Vec<_>>(),
            vec![1, 2, 3, 4],
            "{}",
            db.name
        );
        assert_eq!(all.iter().map(|l| l.attempt).collect::<Vec<_>>(), vec![1, 1, 2, 2]);
        assert_eq!(
            (all[1].at_ms, all[1].stream.as_str(), all[1].line.as_str()),
            (11, "stdout", "run r1")
        );
        assert!(all[2].line.len() < MAX_LINE_BYTES + 40, "{}", all[2].line.len());
        assert!(
            all[2].line.ends_with(&format!("[cut: {} bytes]", long.len())),
            "{}",
            db.name
        );
        // Following: the lines after the last one read, at most `limit`.
        let next = s.job_log(&job, 2, 1).await.unwrap();
        assert_eq!(next.iter().map(|l| l.seq).collect::<Vec<_>>(), vec![3]);
        assert!(s.job_log(&job, 4, 100).await.unwrap().is_empty());
        // Another job's log is its own.
        let other = s.enqueue_job("backtest", &json!({})).await.unwrap();
        s.append_job_log(&other, 1, &[(30, stream::WORKER, "started")])
            .await
            .unwrap();
        assert_eq!(s.job_log(&other, 0, 100).await.unwrap()[0].seq, 1);
        assert_eq!(s.job_log(&job, 0, 100).await.unwrap().len(), 4);
    }
}
