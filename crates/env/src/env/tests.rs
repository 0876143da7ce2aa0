use std::sync::Arc;

use tradelab_core::{Action, Bar, BarSeries, Timeframe};
use tradelab_data::settings::{DataSettings, FeatureSettings};
use tradelab_data::synthetic::{generate, SyntheticConfig};
use tradelab_regime::RegimeSettings;
use tradelab_sim::engine::EngineConfig;
use tradelab_sim::settings::{BacktestSettings, FillPolicy, RiskSettings};

use super::*;
use crate::settings::{EnvSettings, InvalidActions};

/// The sections these tests change (the test kit's `EnvSections` is built
/// on this crate, so its types differ from the ones under test here).
#[derive(Clone, Default)]
struct Sections {
    env: EnvSettings,
    backtest: BacktestSettings,
    risk: RiskSettings,
}

impl Sections {
    fn config(&self) -> EnvConfig {
        EnvConfig::new(
            &self.env,
            EngineConfig::new(&self.backtest, &self.risk, &DataSettings::default()),
        )
    }

    fn market(&self, series: BarSeries) -> Result<MarketData, EnvError> {
        MarketData::new(
            series,
            &FeatureSettings::default(),
            &self.env,
            &RegimeSettings::default(),
        )
    }
}

fn settings() -> Sections {
    let mut s = Sections::default();
    s.env.window = 8;
    s.env.episode_bars = 50;
    s.env.random_start = false;
    s
}

fn market(bars: usize, seed: u64) -> BarSeries {
    generate(&SyntheticConfig {
        bars,
        seed,
        ..Default::default()
    })
    .series
}

fn env_with(s: &Sections, series: BarSeries) -> TradingEnv {
    let data = Arc::new(s.market(series).unwrap());
    TradingEnv::new(data, Split::Train, &s.config(), 1).unwrap()
}

#[test]
fn buy_fills_at_the_next_open_with_the_seed_fee_and_rewards_the_equity_change() {
    let s = settings();
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    let t0 = env.bar_index();
    assert_eq!(env.action_mask(), [true, true, false, false, true]);
    let r = env.step(EnvAction::new(Action::BuyLong, 1.0));
    let series = &env.data().series;
    let fill = env.broker().account().fills[0].clone();
    assert_eq!(
        (fill.ts, fill.price, fill.fee),
        (series.ts[t0 + 1], series.open[t0 + 1], 25.0)
    );
    // Quantity 1.0 commits the whole risk budget: 25% of equity.
    let notional = fill.qty * fill.price;
    assert!(
        notional <= 0.25 * 100_000.0 && notional > 0.249 * 100_000.0 - fill.price,
        "{notional}"
    );
    let equity = 100_000.0 - 25.0 + fill.qty * (series.close[t0 + 1] - fill.price);
    assert!((r.info.equity - equity).abs() < 1e-6);
    assert!((r.reward - (equity - 100_000.0) / 100_000.0 * 100.0).abs() < 1e-9);
    assert_eq!(env.action_mask(), [false, false, true, false, true]);
    assert!(!r.terminated && !r.truncated);
    let r = env.step(EnvAction::new(Action::CloseLong, 0.3));
    assert_eq!(r.info.position, 0.0, "close actions close everything");
    assert_eq!(r.info.fees, 35.0);
}

#[test]
fn signal_close_policy_fills_at_the_observed_close() {
    let mut s = settings();
    s.backtest.fill = FillPolicy::SignalClose;
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    let t0 = env.bar_index();
    env.step(EnvAction::new(Action::SellShort, 0.5));
    let fill = env.broker().account().fills[0].clone();
    assert_eq!(fill.price, env.data().series.close[t0]);
    assert!(env.broker().account().position(0).qty < 0.0);
}

#[test]
fn the_end_of_the_episode_truncates_and_ruin_terminates() {
    let s = settings();
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    let mut steps = 0;
    loop {
        let r = env.step(EnvAction::new(Action::Hold, 1.0));
        steps += 1;
        if r.truncated || r.terminated {
            assert!(r.truncated && !r.terminated);
            break;
        }
    }
    assert_eq!(steps, 49, "50 bars observed, 49 steps");

    // A crash: long at full budget, prices fall 90%; the breaker trips.
    let bars: Vec<Bar> = (0..400)
        .map(|i| {
            let p = if i < 300 {
                100.0 + (i % 5) as f64
            } else {
                100.0 * 0.9f64.powi(i - 299)
            };
            Bar {
                ts: i as i64 * 86_400_000,
                open: p,
                high: p * 1.01,
                low: p * 0.99,
                close: p,
                volume: 1e6,
            }
        })
        .collect();
    let mut series: BarSeries = bars.into_iter().collect();
    series.timeframe = Some(Timeframe::DAY);
    let mut s = settings();
    s.env.episode_bars = 0;
    s.env.train_fraction = 0.9;
    s.env.validation_fraction = 0.05;
    s.risk.max_asset_fraction = 1.0;
    let mut env = env_with(&s, series);
    env.reset();
    let mut ended = None;
    for _ in 0..400 {
        let act = if env.action_mask()[0] {
            Action::BuyLong
        } else {
            Action::Hold
        };
        let r = env.step(EnvAction::new(act, 1.0));
        if r.terminated || r.truncated {
            ended = Some(r);
            break;
        }
    }
    let r = ended.unwrap();
    assert!(r.terminated, "the drawdown breaker terminates");
    assert_eq!(r.info.position, 0.0, "and the position is closed out");
}

#[test]
fn invalid_actions_hold_and_are_penalised_when_configured() {
    let mut s = settings();
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    let r = env.step(EnvAction::new(Action::CloseLong, 1.0));
    assert!(r.info.invalid_action);
    assert_eq!(r.info.fees, 0.0);
    assert_eq!(r.reward, 0.0);
    s.env.invalid_actions = InvalidActions::Penalize;
    s.env.invalid_penalty = 0.25;
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    assert_eq!(env.step(EnvAction::new(Action::CloseShort, 1.0)).reward, -0.25);
}

#[test]
fn normalisation_uses_the_training_split_only_and_observations_are_causal() {
    let s = settings();
    let base = market(1500, 9);
    let a = s.market(base.clone()).unwrap();
    let mut altered = base.clone();
    let test_start = a.bars(Split::Test).start;
    for i in test_start..altered.len() {
        altered.close[i] *= 3.0;
        altered.open[i] *= 3.0;
        altered.high[i] *= 3.0;
        altered.low[i] *= 3.0;
        altered.volume[i] *= 7.0;
    }
    let b = s.market(altered).unwrap();
    assert_eq!(a.mean, b.mean, "statistics come from the training split");
    assert_eq!(a.std, b.std);
    for t in [a.steps(Split::Train).start, 600, test_start - 1] {
        assert_eq!(a.window(t), b.window(t), "bar {t} sees nothing after it");
    }
    assert_ne!(a.window(test_start + 40), b.window(test_start + 40));
    // Training-split observations are roughly standardised.
    let nf = a.n_features();
    let train = a.steps(Split::Train);
    let col0: Vec<f32> = train.clone().map(|t| a.window(t)[(s.env.window - 1) * nf]).collect();
    let mean = col0.iter().map(|&x| x as f64).sum::<f64>() / col0.len() as f64;
    assert!(mean.abs() < 0.1, "{mean}");
}

#[test]
fn random_starts_stay_in_the_split_and_are_seeded() {
    let mut s = settings();
    s.env.random_start = true;
    let data = Arc::new(s.market(market(3000, 4)).unwrap());
    let mut a = TradingEnv::new(data.clone(), Split::Validation, &s.config(), 11).unwrap();
    let mut b = TradingEnv::new(data.clone(), Split::Validation, &s.config(), 11).unwrap();
    let steps = data.steps(Split::Validation);
    let mut starts = std::collections::BTreeSet::new();
    for _ in 0..50 {
        a.reset();
        b.reset();
        assert_eq!(a.bar_index(), b.bar_index());
        assert!(steps.contains(&a.bar_index()) && a.bar_index() + 49 < steps.end + 1);
        starts.insert(a.bar_index());
    }
    assert!(starts.len() > 20, "starts vary");
}

#[test]
fn too_short_data_is_refused_with_the_numbers() {
    let s = settings();
    let e = s.market(market(45, 1)).unwrap_err().to_string();
    assert!(e.contains("split has") && e.contains("env.window"), "{e}");
}

#[test]
fn other_splits_keep_the_fitted_observations_and_refuse_a_split_without_a_step() {
    let s = settings();
    let data = s.market(market(400, 3)).unwrap();
    let online = data.with_splits(100..300, 300..380, 0..0).unwrap();
    assert_eq!(online.bars(Split::Train), 100..300);
    assert_eq!(online.window(250), data.window(250), "normalisation stays as fitted");
    // Ranges past the end are clipped to the series.
    assert_eq!(
        data.with_splits(0..300, 300..999, 0..0)
            .unwrap()
            .bars(Split::Validation),
        300..400
    );
    let e = data.with_splits(0..300, 300..301, 0..0).unwrap_err().to_string();
    assert!(e.contains("the validation split has 1 bars"), "{e}");
    // An empty test split cannot host an environment, and says which split.
    let e = TradingEnv::new(Arc::new(online), Split::Test, &s.config(), 1)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("the test split is empty"), "{e}");
}

#[test]
fn an_observation_flattens_to_the_window_then_the_account() {
    let s = settings();
    let mut env = env_with(&s, market(300, 4));
    let obs = env.reset();
    let (window, account) = (obs.window.to_vec(), obs.account);
    let len = env.data().observation_len();
    assert_eq!(len, s.env.window * env.data().n_features() + ACCOUNT_FEATURES);
    assert_eq!(env.data().window_len(), s.env.window);
    let mut flat = vec![f32::NAN; len];
    env.observation().write_to(&mut flat);
    assert_eq!(&flat[..window.len()], &window[..]);
    assert_eq!(&flat[window.len()..], &account[..]);
    assert_eq!(
        [Split::Train, Split::Validation, Split::Test].map(Split::name),
        ["train", "validation", "test"]
    );
    assert_eq!(EnvConfig::default().env, EnvSettings::default());
}

#[test]
fn the_train_splits_bar_return_variance_is_the_sample_variance_of_its_close_to_close_returns() {
    let s = settings();
    let data = s.market(market(1000, 5)).unwrap();
    let close = &data.series.close[data.bars(Split::Train)];
    let r: Vec<f64> = close.windows(2).map(|w| w[1] / w[0] - 1.0).collect();
    let mean = r.iter().sum::<f64>() / r.len() as f64;
    let var = r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (r.len() - 1) as f64;
    let got = data.train_bar_return_variance();
    assert!(var > 0.0 && (got - var).abs() < 1e-12 * var.max(1.0), "{got} vs {var}");
}

#[test]
fn excess_log_return_pays_standing_aside_minus_the_capped_buy_and_hold() {
    let mut s = settings();
    s.env.reward = crate::settings::RewardKind::ExcessLogReturn;
    s.env.reward_scale = 1.0;
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    let budget = s.config().risk_budget();
    for _ in 0..10 {
        let t = env.bar_index();
        let close = &env.data().series.close;
        let market_return = (close[t + 1] / close[t]).ln();
        let r = env.step(EnvAction::new(Action::Hold, 1.0));
        assert!((r.reward + budget * market_return).abs() < 1e-12, "{}", r.reward);
    }
}

#[test]
fn differential_sharpe_pays_a_small_loss_for_the_entry_fee_in_the_env() {
    let mut s = settings();
    s.env.reward = crate::settings::RewardKind::DifferentialSharpe;
    s.env.reward_scale = 1.0;
    s.backtest.fill = FillPolicy::SignalClose;
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    for _ in 0..20 {
        let action = if env.action_mask()[0] {
            Action::BuyLong
        } else {
            Action::CloseLong
        };
        let r = env.step(EnvAction::new(action, 1.0));
        assert!(
            r.reward.abs() < 50.0,
            "the reward stays on a Sharpe's scale: {}",
            r.reward
        );
    }
}

#[test]
fn under_targets_the_env_holds_the_target_and_reverses_through_flat() {
    let mut s = settings();
    s.env.actions = crate::settings::ActionSpace::Target;
    let mut env = env_with(&s, market(1000, 3));
    env.reset();
    assert_eq!(env.action_mask(), [true, true, false, false, true]);
    let long = |env: &mut TradingEnv| env.step(EnvAction::new(Action::BuyLong, 0.5)).info.position;
    let first = long(&mut env);
    assert!(first > 0.0);
    assert_eq!(long(&mut env), first, "staying long adds nothing");
    assert_eq!(
        env.action_mask(),
        [true, true, false, false, true],
        "every target stays valid"
    );
    // Short from long: closed this bar, sold short on the next.
    let r = env.step(EnvAction::new(Action::SellShort, 0.5));
    assert_eq!((r.info.position, r.info.invalid_action), (0.0, false));
    let r = env.step(EnvAction::new(Action::SellShort, 0.5));
    assert!(r.info.position < 0.0);
    // HOLD is "be flat".
    let r = env.step(EnvAction::new(Action::Hold, 0.5));
    assert_eq!(r.info.position, 0.0);
    // A close is never a target: it is invalid and holds (flat here).
    let r = env.step(EnvAction::new(Action::CloseLong, 0.5));
    assert!(r.info.invalid_action && r.info.position == 0.0);
}
