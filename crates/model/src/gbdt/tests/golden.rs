//! Models trained on rows without missing values serialize exactly as they did before missing
//! values were supported: the fixtures were written by the trainer as it was then, and the
//! shipped models are rebuilt bit for bit on the same guarantee.

use super::super::*;
use crate::progress::Silent;
use crate::rng::Rng;

/// A normal feature (more distinct values than bins), a feature on a grid of 0.1, a category of
/// 5 and a constant column; the label mixes all but the constant.
fn rows(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed, 3, 0);
    let (mut rows, mut scores) = (Vec::with_capacity(4 * n), Vec::with_capacity(n));
    for _ in 0..n {
        let (x0, x1, c) = (rng.normal(), (rng.uniform() * 50.0).round() / 10.0, rng.below(5));
        rows.extend([x0, x1, c as f64, 7.0]);
        scores.push(x0 + 0.4 * (x1 - 2.5) + [0.8, -0.6, 0.0, 1.2, -1.0][c] + 0.5 * rng.normal());
    }
    (rows, scores)
}

const KINDS: [FeatureKind; 4] =
    [FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Categorical { n_codes: 5 }, FeatureKind::Numeric];

fn classes(scores: &[f64]) -> Vec<u8> {
    scores.iter().map(|&s| u8::from(s > -0.7) + u8::from(s > 0.7)).collect()
}

fn params() -> Params {
    Params {
        max_rounds: 6,
        max_leaves: 8,
        max_depth: 4,
        min_data_in_leaf: 10,
        min_data_per_category: 10,
        ..Params::default()
    }
}

fn softmax_json() -> String {
    let ((tr, ts), (vr, vs)) = (rows(800, 1), rows(300, 2));
    let (ty, vy) = (classes(&ts), classes(&vs));
    let (train_set, valid_set) =
        (Dataset { rows: &tr, labels: Labels::Classes(&ty) }, Dataset { rows: &vr, labels: Labels::Classes(&vy) });
    let booster = train(&params(), &KINDS, Objective::Softmax { n_classes: 3 }, train_set, valid_set, &Silent);
    let spec = booster.expect("train").to_spec(&["low".into(), "mid".into(), "high".into()]);
    serde_json::to_string(&spec).expect("json")
}

fn squared_error_json() -> String {
    let ((tr, ty), (vr, vy)) = (rows(800, 3), rows(300, 4));
    let (train_set, valid_set) =
        (Dataset { rows: &tr, labels: Labels::Values(&ty) }, Dataset { rows: &vr, labels: Labels::Values(&vy) });
    let params = Params { max_bins: 16, ..params() };
    let booster = train(&params, &KINDS, Objective::SquaredError, train_set, valid_set, &Silent);
    serde_json::to_string(&booster.expect("train").to_spec(&["y".into()])).expect("json")
}

#[test]
fn softmax_without_missing_values_is_unchanged() {
    assert_eq!(softmax_json(), include_str!("fixtures/golden_softmax.json").trim_end());
}

#[test]
fn squared_error_without_missing_values_is_unchanged() {
    assert_eq!(squared_error_json(), include_str!("fixtures/golden_squared_error.json").trim_end());
}
