//! `tradelab audit`: the trading sessions' audit trail, read back from the
//! store: listed with filters and pages, one event shown in full, each
//! session's hash chain verified, a session exported.

use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tradelab_app::audit::{retention, trail};
use tradelab_app::record::open_store;
use tradelab_app::runtime::runtime;
use tradelab_bus::EventBody;
use tradelab_core::time::format_datetime;
use tradelab_data::load::timestamp::TimestampFormat;
use tradelab_store::audit_events::{AuditEventRow, AuditFilter};

use crate::cli::{AuditCommand, GlobalArgs};
use crate::context::load_settings;

pub fn run(g: &GlobalArgs, c: AuditCommand) -> Result<()> {
    let settings = load_settings(g, &[])?;
    let rt = runtime()?;
    let store = open_store(&rt, &settings)?;
    let outcome = rt.block_on(async {
        match c {
            AuditCommand::List {
                session,
                kind,
                model,
                instrument,
                action,
                from,
                to,
                limit,
                after,
                json,
            } => {
                let filter = AuditFilter {
                    session_id: session,
                    kind,
                    model,
                    instrument,
                    action,
                    from_ms: from.as_deref().map(|t| time_flag("--from", t)).transpose()?,
                    to_ms: to.as_deref().map(|t| time_flag("--to", t)).transpose()?,
                };
                let page = trail::list(&store, &filter, after.as_deref(), limit).await?;
                print_listing(&page, json)
            }
            AuditCommand::Show { id } => {
                let (row, event) = trail::show(&store, &id).await?;
                let mut doc = serde_json::to_value(&event)?;
                if row.kind == "decision" {
                    let explanation = trail::explanation(&store, &row.session_id, row.seq).await?;
                    if let Some(text) = explanation.as_ref().and_then(|e| e["text"].as_str()) {
                        eprintln!("{text}");
                    } else {
                        eprintln!("not explained yet: run `tradelab forensics --until-idle`");
                    }
                    doc["explanation"] = explanation.unwrap_or(serde_json::Value::Null);
                }
                println!("{}", serde_json::to_string_pretty(&doc)?);
                Ok(0)
            }
            AuditCommand::Verify {
                archive: Some(path), ..
            } => verify_archive(&path),
            AuditCommand::Retain { now, dry_run } => {
                let now_ms = match now {
                    Some(t) => time_flag("--now", &t)?,
                    None => tradelab_core::time::now_ms(),
                };
                let report = retention::retain(&store, &settings.audit, now_ms, dry_run).await?;
                let verb = if dry_run { "would archive" } else { "archived" };
                for a in &report.archived {
                    println!(
                        "{}: {verb} events {} to {} ({} events) to {}/{} sha256 {}",
                        a.session,
                        a.first_seq,
                        a.last_seq,
                        a.events,
                        settings.audit.archive_dir.display(),
                        a.file,
                        a.sha256
                    );
                }
                println!(
                    "cutoff {} (audit.retention_years = {}): {} sessions {verb}{}",
                    retention::cutoff_date(report.cutoff_ms),
                    settings.audit.retention_years,
                    report.archived.len(),
                    if dry_run {
                        String::new()
                    } else {
                        format!(", {} events removed from the store", report.removed)
                    }
                );
                Ok(0)
            }
            AuditCommand::Verify { session, .. } => {
                let checked = match session {
                    Some(s) => vec![trail::verify_session(&store, &s).await?],
                    None => trail::verify_all(&store).await?,
                };
                if checked.is_empty() {
                    println!("the audit trail is empty: trading sessions (`tradelab trade`) write it");
                }
                let mut broken = 0;
                for v in &checked {
                    match &v.problem {
                        None if v.events == 0 => println!("{}: no events", v.session),
                        None => println!(
                            "{}: {} events, chain intact (head {})",
                            v.session,
                            v.events,
                            &v.head.hash[..16]
                        ),
                        Some(p) => {
                            broken += 1;
                            println!("{}: BROKEN after {} good events: {p}", v.session, v.events);
                        }
                    }
                }
                Ok(i32::from(broken > 0))
            }
            AuditCommand::Replay { session, model } => replay(g, &settings, &store, &session, model).await,
            AuditCommand::Export { session, out } => {
                let written = export(&store, &session, &out).await?;
                println!(
                    "{} events, {} bytes to {}; sha256 {}",
                    written.events,
                    written.bytes,
                    out.display(),
                    written.sha256
                );
                Ok(0)
            }
        }
    });
    rt.block_on(store.close());
    let code = outcome?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

async fn replay(
    g: &GlobalArgs,
    current: &tradelab_app::Settings,
    store: &tradelab_store::Store,
    session: &str,
    model: Option<String>,
) -> Result<i32> {
    let model = match model {
        Some(m) => m,
        None => {
            store
                .trading_session(session)
                .await
                .with_context(|| format!("trading session {session} (name the model with --model)"))?
                .model
        }
    };
    let folder = super::models::model_folder(g, Path::new(&model))?;
    let mut agent = tradelab_agents::load::load_agent(&folder).with_context(|| format!("opening model {model}"))?;
    let weights = std::fs::read(folder.join("model.safetensors"))
        .with_context(|| format!("reading {}", folder.join("model.safetensors").display()))?;
    let weights_sha256 = tradelab_agents::checkpoint::sha256_hex(&weights);
    let settings = crate::context::model_settings(&agent.provenance().settings, current)?;
    let acting = tradelab_agents::evaluate::Acting::greedy(&settings.env_config());
    let report = tradelab_app::audit::replay::replay(store, session, agent.as_mut(), &weights_sha256, &acting).await?;
    for d in &report.differences {
        println!("{}: {}", d.id, d.what);
    }
    println!(
        "{session}: {} of {} decisions reproduced bit for bit; orders of {} let-through decisions checked; {} differences",
        report.reproduced,
        report.decisions,
        report.orders_checked,
        report.differences.len()
    );
    Ok(i32::from(!report.differences.is_empty()))
}

/// Checks an archive: its checksum against the manifest beside it, then
/// its chain from where the manifest says it starts.
fn verify_archive(path: &Path) -> Result<i32> {
    let session_dir = path.parent().context("an archive lies in its session's folder")?;
    let dir = session_dir
        .parent()
        .context("an archive lies in its session's folder")?;
    let manifest = retention::read_manifest(dir)?;
    let name = format!(
        "{}/{}",
        session_dir.file_name().unwrap_or_default().to_string_lossy(),
        path.file_name().unwrap_or_default().to_string_lossy()
    );
    let entry = manifest.archives.iter().find(|a| a.file == name).with_context(|| {
        format!(
            "{} is not in {}: check the path",
            path.display(),
            dir.join("manifest.json").display()
        )
    })?;
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let sha = tradelab_agents::checkpoint::sha256_hex(&bytes);
    if sha != entry.sha256 {
        println!(
            "{}: BROKEN: its SHA-256 {sha} is not the manifest's {}",
            path.display(),
            entry.sha256
        );
        return Ok(1);
    }
    let start = tradelab_bus::ChainHead {
        seq: entry.first_seq - 1,
        hash: entry.start_hash.clone(),
    };
    let v = trail::verify_archive(path, start)?;
    match &v.problem {
        None if v.head.hash == entry.head_hash && v.events == entry.events => {
            println!(
                "{}: {} events of session {}, checksum and chain intact (head {})",
                path.display(),
                v.events,
                entry.session,
                &v.head.hash[..16]
            );
            let Some(x) = &entry.explanations else {
                return Ok(0);
            };
            let file = dir.join(&x.file);
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let sha = tradelab_agents::checkpoint::sha256_hex(&bytes);
            if sha != x.sha256 {
                println!(
                    "{}: BROKEN: its SHA-256 {sha} is not the manifest's {}",
                    file.display(),
                    x.sha256
                );
                return Ok(1);
            }
            println!("{}: {} explanations, checksum intact", file.display(), x.count);
            Ok(0)
        }
        None => {
            println!(
                "{}: BROKEN: it ends at event {}, not where the manifest says",
                path.display(),
                v.head.seq
            );
            Ok(1)
        }
        Some(p) => {
            println!("{}: BROKEN after {} good events: {p}", path.display(), v.events);
            Ok(1)
        }
    }
}

/// A `--from`/`--to` time, UTC milliseconds.
fn time_flag(flag: &str, text: &str) -> Result<i64> {
    TimestampFormat::Iso
        .parse(text.as_bytes())
        .with_context(|| format!("{flag} {text}: expected a date like 2026-01-02 or 2026-01-02T13:45:00"))
}

async fn export(store: &tradelab_store::Store, session: &str, out: &Path) -> Result<trail::Exported> {
    if out.exists() {
        bail!("{} exists; name a new file", out.display());
    }
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let written = trail::export(store, session, &mut writer).await;
    drop(writer);
    match written {
        Ok(w) => {
            std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
            Ok(w)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// What a row's event says in a few words.
fn summary(row: &AuditEventRow) -> String {
    let Ok(event) = tradelab_bus::Event::from_json(row.event.as_bytes()) else {
        return "(unreadable: run `tradelab audit verify`)".into();
    };
    match &event.event {
        EventBody::Decision(d) => {
            let p = d.probabilities[tradelab_core::Action::ALL
                .iter()
                .position(|a| a.as_str() == d.action)
                .unwrap_or(4)];
            format!(
                "{} {} q={:.2} p={p:.2} value={:.3}",
                d.instrument, d.action, d.quantity, d.value
            )
        }
        EventBody::Order(o) => format!(
            "{} {} {} {}",
            o.instrument,
            o.action,
            o.qty.map_or("all".into(), |q| format!("{q:.4}")),
            o.status
        ),
        EventBody::Fill(f) => format!(
            "{} {} {:.4} @ {:.4} fee {:.2}",
            f.instrument, f.action, f.qty, f.price, f.fee
        ),
        EventBody::RiskVerdict(r) => format!(
            "{} {} order(s) {}: {}",
            r.instrument,
            r.orders,
            if r.allowed { "allowed" } else { "blocked" },
            r.reason
        ),
        EventBody::Breaker(b) => format!("{} {} -> {} ({}): {}", b.breaker, b.from, b.to, b.policy, b.reason),
        EventBody::Model(m) => format!(
            "{} {} ({}, weights {})",
            m.change,
            m.model,
            m.kind,
            &m.weights_sha256[..m.weights_sha256.len().min(12)]
        ),
        EventBody::Session(n) => format!("{} {}", n.note, n.detail),
    }
}

fn print_listing(page: &trail::Listing, as_json: bool) -> Result<i32> {
    if as_json {
        let events: Vec<serde_json::Value> = page
            .events
            .iter()
            .map(|r| {
                json!({
                    "id": format!("{}:{}", r.session_id, r.seq),
                    "kind": r.kind,
                    "at_ms": r.at_ms,
                    "event": serde_json::from_str::<serde_json::Value>(&r.event).unwrap_or(serde_json::Value::Null),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"events": events, "next": page.next}))?
        );
        return Ok(0);
    }
    if page.events.is_empty() {
        println!("no events match");
    }
    for r in &page.events {
        println!(
            "{:<18} {}  {:<12} {}",
            format!("{}:{}", r.session_id, r.seq),
            format_datetime(r.at_ms / 1000 * 1000),
            r.kind,
            summary(r)
        );
    }
    if let Some(next) = &page.next {
        println!("more: --after {next}");
    }
    Ok(0)
}
