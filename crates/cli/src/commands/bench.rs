//! `tradelab bench`: throughput of the hot paths, as medians of repeated
//! timed runs after a warm-up. BENCHMARKS.md records the figures and the
//! commands; `scripts/bench/engine_vs_vectorbt.sh` runs the engine and
//! vectorbt side by side on the same series.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tradelab_app::Settings;
use tradelab_core::{BarSeries, Timeframe};
use tradelab_data::load::{load_file, LoadOptions};
use tradelab_data::FeatureEngine;
use tradelab_sim::costs::Slippage;
use tradelab_sim::engine::{self, EngineConfig};
use tradelab_sim::risk::RiskLimits;
use tradelab_sim::settings::FillPolicy;
use tradelab_sim::sizing::Sizing;
use tradelab_sim::strategies::SmaCrossover;

use crate::cli::{BenchArgs, GlobalArgs};
use crate::context::load_settings;

/// Median and minimum seconds of `repeats` runs after one warm-up, and
/// the warm-up's answer (a check that the work was done).
pub fn time_it(repeats: usize, mut f: impl FnMut() -> f64) -> (f64, f64, f64) {
    let check = f();
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(f());
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    (t[t.len() / 2], t[0], check)
}

/// A seeded geometric random walk with consistent OHLC around it.
pub fn random_walk(bars: usize, seed: u64, name: &str) -> BarSeries {
    use rand_distr_free::normal;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut s = BarSeries::with_capacity(name, bars);
    s.timeframe = Some(Timeframe::MINUTE);
    let mut close = 100.0f64;
    for i in 0..bars {
        let open = close;
        close *= (0.001 * normal(&mut rng)).exp();
        let hi = open.max(close) * (1.0 + 0.0005 * normal(&mut rng).abs());
        let lo = open.min(close) * (1.0 - 0.0005 * normal(&mut rng).abs());
        s.ts.push(1_600_000_000_000 + i as i64 * 60_000);
        s.open.push(open);
        s.high.push(hi);
        s.low.push(lo);
        s.close.push(close);
        s.volume.push(1000.0 + (i % 97) as f64);
    }
    s
}

/// Box-Muller on the workspace's `rand`, so the CLI needs no extra crate.
mod rand_distr_free {
    use rand::Rng;
    pub fn normal(rng: &mut impl Rng) -> f64 {
        let u1: f64 = rng.random::<f64>().max(1e-300);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// The vectorbt comparison's rules: all-in, whole shares, 25/35 fees, fill at
/// the signal close, no risk layer.
fn peer_config(settings: &Settings, initial_cash: f64) -> EngineConfig {
    let mut cfg = settings.engine_config();
    cfg.initial_cash = initial_cash;
    cfg.fill = FillPolicy::SignalClose;
    cfg.slippage = Slippage::None;
    cfg.sizing = Sizing::FractionOfEquity(1.0);
    cfg.risk = RiskLimits::off();
    cfg
}

/// Writes `s` as a `datetime,open,high,low,close,volume` file; its size.
pub fn write_ohlcv_csv(path: &Path, s: &BarSeries) -> Result<usize> {
    let mut text = String::with_capacity(s.len() * 80);
    text.push_str("datetime,open,high,low,close,volume\n");
    for b in s.iter() {
        text.push_str(&format!(
            "{},{},{},{},{},{}\n",
            tradelab_core::time::format_datetime(b.ts),
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume
        ));
    }
    std::fs::write(path, &text)?;
    Ok(text.len())
}

fn write_close_csv(path: &Path, s: &BarSeries) -> Result<()> {
    let mut out = String::with_capacity(s.len() * 20);
    out.push_str("close\n");
    for c in &s.close {
        out.push_str(&format!("{c:?}\n"));
    }
    tradelab_data::cache::write_atomic(path, out.as_bytes())?;
    Ok(())
}

pub fn run(g: &GlobalArgs, a: &BenchArgs) -> Result<()> {
    let settings = load_settings(g, &[])?;
    if a.bars < 100 {
        bail!("--bars must be at least 100");
    }
    let what = a.what.as_str();
    if ![
        "all",
        "engine",
        "portfolio",
        "csv",
        "features",
        "env",
        "ppo",
        "ppo-training",
        "hrm",
        "trading",
        "events",
        "forensics",
        "chart",
    ]
    .contains(&what)
    {
        bail!(
            "unknown benchmark `{what}`; choose engine, portfolio, csv, features, env, ppo, ppo-training, hrm, trading, events, forensics, chart or all"
        );
    }
    if what == "chart" {
        // The dashboard's chart and regime routes on one long file.
        return super::bench_chart::run(&settings, a.bars, a.repeats);
    }
    if what == "trading" {
        // --bars is the total across instruments (capped for the week run's
        // sake at 200k).
        return super::bench_trading::run(&settings, a.bars.min(200_000), a.repeats);
    }
    if what == "events" {
        // A session's events: off, in-process, JetStream (bus.url).
        return super::bench_events::run(&settings, a.bars.min(200_000), a.repeats);
    }
    if what == "forensics" {
        // Decisions explained per agent kind (a few hundred bars suffice).
        return super::bench_forensics::run(&settings, a.bars.min(500), tradelab_agents::explanation::DEFAULT_STEPS);
    }
    if what == "hrm" {
        // Training steps on a PPO-sized minibatch (256), the paper preset on
        // a smaller one (a CPU step at 256 takes minutes); decisions at batch 1.
        return super::bench_hrm::run(&settings, 256, a.repeats.max(20), 16);
    }
    if what == "ppo" || what == "ppo-training" {
        // Steps of PPO training per timed run (capped: --bars defaults to a
        // million); `ppo-training` skips the update-step and latency parts.
        return super::bench_ppo::run(&settings, a.bars.min(65_536), a.repeats, what == "ppo");
    }
    let all = what == "all";
    println!("median of {} runs after a warm-up, one thread", a.repeats);
    if all || what == "engine" {
        let series = random_walk(a.bars, settings.seed, "BENCH");
        if let Some(p) = &a.write_csv {
            write_close_csv(p, &series)?;
        }
        let cfg = peer_config(&settings, 1e9);
        let (med, min, fin) = time_it(a.repeats, || {
            let mut s = SmaCrossover::new(10, 30, false);
            let r = engine::run(&[&series], &mut s, &cfg);
            r.final_equity + r.trades.len() as f64 * 0.0
        });
        let trades = engine::run(&[&series], &mut SmaCrossover::new(10, 30, false), &cfg)
            .trades
            .len();
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"engine_sma_crossover\",\"bars\":{},\"median_s\":{med:.6},\"min_s\":{min:.6},\"bars_per_s\":{:.0},\"final_value\":{fin},\"trades\":{trades}}}",
            a.bars,
            a.bars as f64 / med
        );
    }
    if all || what == "portfolio" {
        let per = a.bars / 10;
        let feeds: Vec<BarSeries> = (0..10)
            .map(|i| random_walk(per, settings.seed + i, &format!("I{i}")))
            .collect();
        let refs: Vec<&BarSeries> = feeds.iter().collect();
        let mut cfg = settings.engine_config();
        cfg.initial_cash = 1e9;
        cfg.sizing = Sizing::FractionOfEquity(0.1);
        let (med, min, fin) = time_it(a.repeats, || {
            let mut s = SmaCrossover::new(10, 30, false);
            engine::run(&refs, &mut s, &cfg).final_equity
        });
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"portfolio_10_instruments\",\"bars\":{},\"median_s\":{med:.6},\"min_s\":{min:.6},\"bars_per_s\":{:.0},\"final_value\":{fin}}}",
            per * 10,
            (per * 10) as f64 / med
        );
    }
    if all || what == "csv" {
        let series = random_walk(a.bars, settings.seed, "CSV");
        let dir = std::env::temp_dir().join(format!("tradelab-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("bench.csv");
        let bytes = write_ohlcv_csv(&path, &series)?;
        let (med, min, rows) = time_it(a.repeats, || {
            load_file(&path, &LoadOptions::default()).map_or(0.0, |(s, _)| s.len() as f64)
        });
        let _ = std::fs::remove_dir_all(&dir);
        if rows as usize != a.bars {
            bail!("CSV benchmark loaded {rows} rows, expected {}", a.bars);
        }
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"csv_load_validate\",\"rows\":{},\"bytes\":{},\"median_s\":{med:.6},\"min_s\":{min:.6},\"rows_per_s\":{:.0}}}",
            a.bars,
            bytes,
            a.bars as f64 / med
        );
    }
    if all || what == "features" {
        let series = random_walk(a.bars, settings.seed, "FEAT");
        let mut fe = FeatureEngine::new(&settings.features);
        let mut row = vec![0.0; fe.names().len()];
        let (med, min, _) = time_it(a.repeats, || {
            fe.reset();
            for b in series.iter() {
                fe.update(&b, &mut row);
            }
            row.iter().filter(|v| v.is_finite()).sum()
        });
        println!(
            "{{\"tool\":\"tradelab\",\"bench\":\"streaming_features\",\"bars\":{},\"features\":{},\"median_s\":{med:.6},\"min_s\":{min:.6},\"updates_per_s\":{:.0}}}",
            a.bars,
            row.len(),
            a.bars as f64 / med
        );
    }
    if all || what == "env" {
        bench_env(&settings, a)?;
    }
    Ok(())
}

/// The vectorised environment stepped with uniformly random valid actions.
fn bench_env(settings: &Settings, a: &BenchArgs) -> Result<()> {
    use std::sync::Arc;
    use tradelab_core::Action;
    use tradelab_env::{EnvAction, Split, VecEnv};

    const ENVS: usize = 16;
    let mut s = settings.clone();
    // One long episode per environment, as gym-anytrading runs it.
    s.env.episode_bars = 0;
    s.env.train_fraction = 0.98;
    s.env.validation_fraction = 0.01;
    let series = random_walk(a.bars, settings.seed, "ENV");
    if let Some(p) = &a.write_csv {
        write_close_csv(p, &series)?;
    }
    let data = Arc::new(s.market_data(series)?);
    let mut venv = VecEnv::new(&[data], ENVS, Split::Train, &s.env_config(), settings.seed)?;
    let steps_per_round = a.bars / ENVS;
    let mut actions = vec![EnvAction::new(Action::Hold, 1.0); ENVS];
    // xorshift64*: the cheapest decent generator, so the benchmark measures the environment.
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ settings.seed;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let (med, min, checksum) = time_it(a.repeats, || {
        let mut total = 0.0;
        for _ in 0..steps_per_round {
            for (i, act) in actions.iter_mut().enumerate() {
                let r = next();
                let mask = venv.masks[i];
                let mut k = (r % 5) as usize;
                while !mask[k] {
                    k = (k + 1) % 5;
                }
                let quantity = ((r >> 32) as f64 / u32::MAX as f64).max(0.01);
                *act = EnvAction::new(Action::ALL[k], quantity);
            }
            venv.step(&actions);
            total += venv.rewards.iter().sum::<f64>();
        }
        total
    });
    let steps = steps_per_round * ENVS;
    println!(
        "{{\"tool\":\"tradelab\",\"bench\":\"vec_env_random_actions\",\"envs\":{ENVS},\"window\":{},\"steps\":{steps},\"median_s\":{med:.6},\"min_s\":{min:.6},\"steps_per_s\":{:.0},\"checksum\":{checksum}}}",
        s.env.window,
        steps as f64 / med
    );
    Ok(())
}
