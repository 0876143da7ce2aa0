//! The vectorised environment: lockstep stepping, automatic resets, final
//! states for bootstrapping, determinism, and no allocation per step.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tradelab_core::Action;
use tradelab_env::{EnvAction, MarketData, Split, VecEnv};
use tradelab_testkit::alloc::{allocations, CountingAlloc};
use tradelab_testkit::synthetic_market;
use tradelab_testkit::EnvSections;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn setup(n: usize, seed: u64) -> VecEnv {
    let mut s = EnvSections::default();
    s.env.window = 16;
    s.env.episode_bars = 64;
    let data: Vec<Arc<MarketData>> = (0..3).map(|m| synthetic_market(3000, 100 + m, &s)).collect();
    VecEnv::new(&data, n, Split::Train, &s.env_config(), seed).unwrap()
}

/// Random valid actions.
fn actions(v: &VecEnv, rng: &mut ChaCha8Rng, out: &mut [EnvAction]) {
    for (i, a) in out.iter_mut().enumerate() {
        let valid: [usize; 5] = std::array::from_fn(|k| k);
        let mask = v.masks[i];
        let mut k = rng.random_range(0..5);
        while !mask[valid[k]] {
            k = (k + 1) % 5;
        }
        *a = EnvAction::new(Action::from_index(k).unwrap(), rng.random_range(0.05..=1.0));
    }
}

#[test]
fn lockstep_episodes_reset_themselves_and_report_final_states() {
    let mut v = setup(6, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut acts = vec![EnvAction::new(Action::Hold, 1.0); v.len()];
    let mut finished = 0;
    for _ in 0..500 {
        actions(&v, &mut rng, &mut acts);
        v.step(&acts);
        for i in 0..v.len() {
            assert!(v.rewards[i].is_finite());
            assert_eq!(v.market(i), i % 3);
            if v.terminated[i] || v.truncated[i] {
                finished += 1;
                let f = v.finals[i].expect("a finished episode leaves its final state");
                assert_eq!(f.market, i % 3);
                assert!(v.finished_returns[i].is_some());
                assert_eq!(v.episode_returns[i], 0.0);
            } else {
                assert!(v.finals[i].is_none());
            }
        }
    }
    assert!(
        finished >= 6 * 7,
        "episodes of 64 bars end about every 63 steps: {finished}"
    );
}

#[test]
fn same_seed_same_trajectory() {
    let run = |seed| {
        let mut v = setup(4, seed);
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut acts = vec![EnvAction::new(Action::Hold, 1.0); v.len()];
        let mut total = Vec::new();
        for _ in 0..300 {
            actions(&v, &mut rng, &mut acts);
            v.step(&acts);
            total.extend(v.rewards.iter().map(|r| r.to_bits()));
        }
        total
    };
    assert_eq!(run(3), run(3));
    assert_ne!(run(3), run(4));
}

#[test]
fn stepping_does_not_allocate_once_warm() {
    let mut v = setup(8, 2);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut acts = vec![EnvAction::new(Action::Hold, 1.0); v.len()];
    // Holding never allocates.
    let before = allocations();
    for _ in 0..2_000 {
        v.step(&acts);
    }
    assert_eq!(allocations(), before, "HOLD steps allocate nothing");
    // Trading appends to the fill and trade logs; their capacity survives
    // resets, so after a warm-up growth is rare, never per step.
    for _ in 0..3_000 {
        actions(&v, &mut rng, &mut acts);
        v.step(&acts);
    }
    let before = allocations();
    for _ in 0..3_000 {
        actions(&v, &mut rng, &mut acts);
        v.step(&acts);
    }
    let grown = allocations() - before;
    assert!(grown <= 8, "{grown} allocations in 24,000 trading steps");
}
