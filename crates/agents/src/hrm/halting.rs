//! Adaptive computation time with Q-learning halting (algorithms.md 1.5
//! and 2): when to stop thinking about a bar, and what the Q-head learns.

use rand::Rng;

/// M_min for one decision: with probability `epsilon` (training only) a
/// draw from U{2..=M_max}, so the Q-head also sees what deeper thinking
/// gives; otherwise the configured minimum.
pub fn draw_min_segments(rng: &mut impl Rng, training: bool, epsilon: f64, min: usize, max: usize) -> usize {
    if training && max >= 2 && epsilon > 0.0 && rng.random::<f64>() < epsilon {
        rng.random_range(2..=max)
    } else {
        min.clamp(1, max.max(1))
    }
}

/// Whether to stop after segment `m` (1-based): always at M_max; otherwise
/// when adaptive halting is on, M_min is reached and the Q-head values
/// halting above continuing.
pub fn should_halt(m: usize, q_halt: f32, q_continue: f32, min: usize, max: usize, adaptive: bool) -> bool {
    m >= max || (adaptive && m >= min && q_halt > q_continue)
}

/// One segment's decision summary, for the halting targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentDecision {
    /// Most likely valid action.
    pub action: usize,
    /// Expected quantity `alpha / (alpha + beta)`.
    pub quantity: f32,
    /// `sigmoid` of the Q-head's halt logit: the value of halting here.
    pub halt: f32,
    /// `sigmoid` of the Q-head's continue logit: the value of thinking on.
    pub cont: f32,
}

/// What a segment's decision is checked against for its halt target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// The deepest segment's decision (RL: no labels, algorithms.md 2).
    Deepest,
    /// A known correct action (supervised pre-training, as in HRM).
    Label(usize),
}

/// Targets of segment `m` (0-based index into `segments`, one sample's
/// segments 1..=M_max):
/// - halt: 1 when this segment's decision is right: with
///   [`Reference::Deepest`], when it agrees with the deepest one (same
///   action, and for entries a quantity within `tolerance`), that is, when
///   thinking longer would not have changed it; with a label, when its
///   action is the label;
/// - continue: the next segment's best value less `margin` (ties go to
///   halting), clipped to [0, 1]; `None` for the last segment, which
///   cannot continue.
pub fn halting_targets(
    segments: &[SegmentDecision],
    m: usize,
    reference: Reference,
    tolerance: f32,
    margin: f32,
    is_entry: impl Fn(usize) -> bool,
) -> (f32, Option<f32>) {
    let here = segments[m];
    let right = match reference {
        Reference::Label(label) => here.action == label,
        Reference::Deepest => {
            let last = segments[segments.len() - 1];
            here.action == last.action && (!is_entry(here.action) || (here.quantity - last.quantity).abs() < tolerance)
        }
    };
    let halt = if right { 1.0 } else { 0.0 };
    let cont = segments
        .get(m + 1)
        .map(|next| (next.halt.max(next.cont) - margin).clamp(0.0, 1.0));
    (halt, cont)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_halting_rule() {
        // Never before M_min, always at M_max, else by the Q-head.
        assert!(!should_halt(1, 5.0, -5.0, 2, 4, true));
        assert!(should_halt(2, 5.0, -5.0, 2, 4, true));
        assert!(!should_halt(2, -5.0, 5.0, 2, 4, true));
        assert!(should_halt(4, -5.0, 5.0, 1, 4, true));
        // Adaptive halting off: always M_max.
        assert!(!should_halt(3, 5.0, -5.0, 1, 4, false));
        assert!(should_halt(4, 5.0, -5.0, 1, 4, false));
        // At initialisation both logits are -5: equal, so no halt before M_max.
        assert!(!should_halt(1, -5.0, -5.0, 1, 4, true));
    }

    #[test]
    fn min_segments_draws_follow_epsilon() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let draws: Vec<usize> = (0..10_000)
            .map(|_| draw_min_segments(&mut rng, true, 0.1, 1, 4))
            .collect();
        let drawn = draws.iter().filter(|&&m| m >= 2).count() as f64 / draws.len() as f64;
        assert!((drawn - 0.1).abs() < 0.02, "{drawn}");
        assert!(draws.iter().all(|&m| (1..=4).contains(&m)));
        assert!((2..=4).all(|k| draws.contains(&k)));
        // Inference never draws.
        assert!((0..1000).all(|_| draw_min_segments(&mut rng, false, 0.1, 1, 4) == 1));
        assert_eq!(draw_min_segments(&mut rng, true, 1.0, 1, 1), 1);
    }

    #[test]
    fn targets_by_agreement_with_the_deepest_segment() {
        let d = |action, quantity, halt, cont| SegmentDecision {
            action,
            quantity,
            halt,
            cont,
        };
        let entry = |a: usize| a == 0 || a == 1;
        let segs = [d(4, 0.5, 0.2, 0.3), d(0, 0.2, 0.6, 0.1), d(0, 0.5, 0.9, 0.4)];
        // Segment 1 holds, the deepest buys: disagreement.
        let (h, c) = halting_targets(&segs, 0, Reference::Deepest, 0.1, 0.01, entry);
        assert_eq!(h, 0.0);
        assert!((c.unwrap() - 0.59).abs() < 1e-6);
        // Segment 2 buys but with a quantity 0.3 away: still disagreement.
        let (h, c) = halting_targets(&segs, 1, Reference::Deepest, 0.1, 0.01, entry);
        assert_eq!(h, 0.0);
        assert!((c.unwrap() - 0.89).abs() < 1e-6);
        // The deepest agrees with itself and cannot continue.
        assert_eq!(
            halting_targets(&segs, 2, Reference::Deepest, 0.1, 0.01, entry),
            (1.0, None)
        );
        // A close quantity counts as agreement for entries.
        let segs = [d(1, 0.45, 0.0, 0.0), d(1, 0.5, 0.0, 0.0)];
        assert_eq!(halting_targets(&segs, 0, Reference::Deepest, 0.1, 0.0, entry).0, 1.0);
        // Against a label, only the action counts.
        assert_eq!(halting_targets(&segs, 0, Reference::Label(1), 0.1, 0.0, entry).0, 1.0);
        assert_eq!(halting_targets(&segs, 0, Reference::Label(4), 0.1, 0.0, entry).0, 0.0);
    }
}
