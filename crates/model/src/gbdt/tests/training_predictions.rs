//! The training rows' predictions kept from boosting are the engine's predictions of those rows,
//! bit for bit, for every objective, with missing values, and when early stopping drops the
//! trees of the last rounds.

use super::super::*;
use super::toy;
use crate::engine::Engine;
use crate::progress::Silent;

/// The toy rows with every seventh row's first feature missing.
fn rows(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let (mut rows, labels) = toy(n, seed);
    for row in rows.chunks_mut(3).step_by(7) {
        row[0] = f64::NAN;
    }
    (rows, labels)
}

/// Trains `objective` on the toy rows (`target` makes each set's labels) and checks the kept
/// predictions against the engine's; returns whether trees were dropped after the best round.
fn check(objective: Objective, target: fn(&[u8]) -> Target) -> bool {
    let ((tr, ty), (vr, vy)) = (rows(3000, 11), rows(1000, 12));
    let (train_labels, valid_labels) = (target(&ty), target(&vy));
    let kinds = [FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Categorical { n_codes: 6 }];
    let params = Params { max_rounds: 300, learning_rate: 0.3, ..Params::default() };
    let booster = train(
        &params,
        &kinds,
        objective,
        Dataset { rows: &tr, labels: train_labels.labels() },
        Dataset { rows: &vr, labels: valid_labels.labels() },
        &Silent,
    )
    .expect("train");
    let names: Vec<String> = (0..objective.n_names()).map(|c| format!("c{c}")).collect();
    let engine = Engine::compile(&booster.to_spec(&names)).expect("compile");
    let mut expected = vec![0.0; ty.len() * engine.n_classes()];
    engine.predict_batch(&tr, &mut expected);
    let kept = booster.training_predictions();
    assert_eq!(kept.len(), expected.len(), "{objective:?}");
    for (i, (a, b)) in kept.iter().zip(&expected).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "{objective:?}, value {i}: kept {a}, engine {b}");
    }
    booster.rounds_run > booster.best_iteration
}

/// Labels of one set, owned.
enum Target {
    Classes(Vec<u8>),
    Values(Vec<f64>),
}

impl Target {
    fn labels(&self) -> Labels<'_> {
        match self {
            Self::Classes(c) => Labels::Classes(c),
            Self::Values(v) => Labels::Values(v),
        }
    }
}

#[test]
fn training_predictions_are_the_engines_bit_for_bit() {
    let dropped = [
        check(Objective::Softmax { n_classes: 3 }, |y| Target::Classes(y.to_vec())),
        check(Objective::Logistic, |y| Target::Classes(y.iter().map(|&c| u8::from(c == 2)).collect())),
        check(Objective::SquaredError, |y| Target::Values(y.iter().map(|&c| f64::from(c) * 1.5 - 0.2).collect())),
        check(Objective::poisson(), |y| Target::Values(y.iter().map(|&c| f64::from(c)).collect())),
    ];
    assert!(dropped.iter().any(|d| *d), "no case stopped early: {dropped:?}");
}
