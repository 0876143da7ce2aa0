//! The learning test: on a seeded synthetic market with a learnable pattern
//! (persistent trends that alternate up and down, so buying and holding earns
//! about nothing), a small PPO budget must beat buy-and-hold out of sample,
//! after costs, in the backtesting engine, both greedy and sampled, with the
//! seed's trading actions, with target actions and with a continuous target
//! exposure. If learning breaks, this fails.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};
use tradelab_agents::evaluate::AgentStrategy;
use tradelab_agents::settings::PpoSettings;
use tradelab_agents::trainer::{train, Scoring, TrainPlan, TrainingMarket};
use tradelab_agents::{MarketKey, PpoAgent, PpoConfig};
use tradelab_core::{Bar, BarSeries, Timeframe};
use tradelab_env::{ActionSpace, Split};
use tradelab_sim::engine;
use tradelab_sim::strategies::BuyAndHold;
use tradelab_testkit::EnvSections;

/// Trends of 60-140 bars, drift +-0.3% a bar, alternating in sign, with 1%
/// noise: momentum a trend follower can exploit, zero net drift.
fn trending_market(bars: usize, seed: u64) -> BarSeries {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, 0.01).unwrap();
    let length = Uniform::new(60usize, 140).unwrap();
    let mut s = BarSeries::with_capacity("TREND", bars);
    s.timeframe = Some(Timeframe::DAY);
    let (mut price, mut drift, mut left) = (100.0f64, 0.003f64, length.sample(&mut rng));
    for i in 0..bars {
        if left == 0 {
            drift = -drift;
            left = length.sample(&mut rng);
        }
        left -= 1;
        let open = price;
        price *= (drift + noise.sample(&mut rng)).exp();
        let (hi, lo) = (open.max(price) * 1.002, open.min(price) * 0.998);
        s.push(Bar {
            ts: i as i64 * 86_400_000,
            open,
            high: hi,
            low: lo,
            close: price,
            volume: 1e6,
        });
    }
    s
}

#[test]
fn ppo_learns_a_trend_and_beats_buy_and_hold_out_of_sample_after_costs() {
    learns_and_beats_buy_and_hold(ActionSpace::Trade);
}

#[test]
fn ppo_with_target_actions_learns_the_trend_too() {
    learns_and_beats_buy_and_hold(ActionSpace::Target);
}

#[test]
fn ppo_with_a_continuous_exposure_target_learns_the_trend_too() {
    learns_and_beats_buy_and_hold(ActionSpace::Exposure);
}

/// Trains on the trending market reading the policy's outputs as
/// `actions`, then checks the greedy and the sampled policy out of sample.
fn learns_and_beats_buy_and_hold(actions: ActionSpace) {
    let mut settings = EnvSections::default();
    settings.env.window = 8;
    settings.env.actions = actions;
    let ppo = PpoSettings {
        hidden: 32,
        // 160 updates of 8 x 128 steps (about 15 s); 3x the default step size,
        // as small problems allow.
        total_steps: 8 * 128 * 160,
        learning_rate: 1e-3,
        eval_every: 0,
        ..Default::default()
    };
    let series = trending_market(6000, 11);
    let data = Arc::new(settings.market_data(series).unwrap());
    let key = MarketKey {
        instrument: 0,
        timeframe: 0,
    };
    let mut agent = PpoAgent::new(PpoConfig {
        encoder: "mlp".into(),
        features: data.n_features(),
        window: settings.env.window,
        instruments: 1,
        timeframes: 1,
        seed: 1,
        ppo: ppo.clone(),
        mixture: None,
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let plan = TrainPlan {
        run_dir: tmp.path().to_path_buf(),
        total_steps: ppo.total_steps,
        eval_every: 0,
        patience: 0,
        seed: 1,
        scoring: Scoring::from_settings(&ppo),
        instrument_dropout: None,
        checkpoint_every: 0,
        interrupt: None,
    };
    let markets = [TrainingMarket {
        data: data.clone(),
        key,
    }];
    let summary = train(&mut agent, &markets, &settings.env_config(), &plan, |_| {}).unwrap();
    eprintln!("trained: {summary:?}");

    // Out of sample: the test split, in the engine, with the default costs
    // (25 per entry, 35 per exit) and risk layer.
    let test = data.bars(Split::Test);
    let slice = data.series.slice(test.start, test.end);
    let cfg = settings.engine_config();
    let mut strategy = AgentStrategy::new(&mut agent, &data, key, test.start, &settings.env_config());
    let learned = engine::run(&[&slice], &mut strategy, &cfg);
    assert!(strategy.error.is_none(), "{:?}", strategy.error);
    let hold = engine::run(&[&slice], &mut BuyAndHold::default(), &cfg);
    let pct = |e: f64| (e / settings.backtest.initial_cash - 1.0) * 100.0;
    eprintln!(
        "test split: agent {:+.2}% ({} trades, fees {:.0}), buy-and-hold {:+.2}%",
        pct(learned.final_equity),
        learned.trades.len(),
        learned.fees_paid,
        pct(hold.final_equity)
    );
    assert!(learned.fees_paid > 0.0, "costs were charged");
    assert!(!learned.trades.is_empty(), "the greedy policy trades");
    assert!(
        learned.final_equity > hold.final_equity && learned.final_equity > settings.backtest.initial_cash,
        "agent {:.0} vs buy-and-hold {:.0}",
        learned.final_equity,
        hold.final_equity
    );

    // The policy sampled as in training, over seeded paths: it trades on
    // every path and, on average, beats buy-and-hold after costs too.
    let paths: Vec<engine::BacktestResult<'_>> = (0..4)
        .map(|p| {
            use tradelab_agents::Agent;
            agent.seed_sampling(100 + p);
            let mut sampled = AgentStrategy::new(&mut agent, &data, key, test.start, &settings.env_config()).sampled();
            let r = engine::run(&[&slice], &mut sampled, &cfg);
            assert!(sampled.error.is_none());
            r
        })
        .collect();
    let mean = paths.iter().map(|r| r.final_equity).sum::<f64>() / paths.len() as f64;
    eprintln!(
        "sampled, {} paths: {:?}% (mean {:+.2}%)",
        paths.len(),
        paths
            .iter()
            .map(|r| (pct(r.final_equity) * 100.0).round() / 100.0)
            .collect::<Vec<_>>(),
        pct(mean)
    );
    assert!(paths.iter().all(|r| !r.trades.is_empty()), "every sampled path trades");
    assert!(
        mean > hold.final_equity && mean > settings.backtest.initial_cash,
        "sampled mean {mean:.0} vs buy-and-hold {:.0}",
        hold.final_equity
    );
}
