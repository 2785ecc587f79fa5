//! The logistic objective: as good as a 2-class softmax with half the trees, probabilities that
//! are the sigmoid of its raw score, and a spec that is the equivalent 2-class softmax.

use super::super::*;
use super::missing::spec_scores;
use crate::engine::{Engine, Output};
use crate::progress::Silent;
use crate::rng::Rng;

/// Two numeric features and a category of 4; the class is a noisy threshold of their sum.
fn rows(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let mut rng = Rng::new(seed, 5, 0);
    let (mut rows, mut labels) = (Vec::with_capacity(3 * n), Vec::with_capacity(n));
    for _ in 0..n {
        let (x0, x1, c) = (rng.normal(), (rng.uniform() * 100.0).round() / 10.0, rng.below(4));
        let s = 1.5 * x0 + 0.3 * (x1 - 5.0) + [1.0, -1.0, 0.5, 0.0][c] + rng.normal();
        rows.extend([x0, x1, c as f64]);
        labels.push(u8::from(s > 0.3));
    }
    (rows, labels)
}

const KINDS: [FeatureKind; 3] = [FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Categorical { n_codes: 4 }];

fn fit(objective: Objective) -> Booster {
    let ((tr, ty), (vr, vy)) = (rows(6000, 1), rows(2000, 2));
    let (train_set, valid_set) =
        (Dataset { rows: &tr, labels: Labels::Classes(&ty) }, Dataset { rows: &vr, labels: Labels::Classes(&vy) });
    let params = Params { max_rounds: 200, learning_rate: 0.1, ..Params::default() };
    train(&params, &KINDS, objective, train_set, valid_set, &Silent).expect("train")
}

/// Mean log loss and accuracy of `booster` on `rows`.
fn evaluate(booster: &Booster, rows: &[f64], labels: &[u8]) -> (f64, f64) {
    let (mut loss, mut correct, mut p) = (0.0, 0, [0.0; 2]);
    for (row, &y) in rows.chunks(3).zip(labels) {
        booster.predict_proba(row, &mut p);
        loss -= p[usize::from(y)].ln();
        correct += usize::from(usize::from(p[1] > 0.5) == usize::from(y));
    }
    (loss / labels.len() as f64, correct as f64 / labels.len() as f64)
}

#[test]
fn matches_a_two_class_softmax_with_one_tree_per_round() {
    let (logistic, softmax) = (fit(Objective::Logistic), fit(Objective::Softmax { n_classes: 2 }));
    assert_eq!(logistic.n_trees(), logistic.best_iteration);
    assert!(logistic.best_iteration < logistic.rounds_run, "early stopping");
    let (test_rows, test_labels) = rows(10_000, 3);
    let ((loss, accuracy), (softmax_loss, softmax_accuracy)) =
        (evaluate(&logistic, &test_rows, &test_labels), evaluate(&softmax, &test_rows, &test_labels));
    assert!(loss < 1.02 * softmax_loss, "log loss {loss} vs softmax {softmax_loss}");
    assert!(accuracy > softmax_accuracy - 0.01 && accuracy > 0.8, "{accuracy} vs {softmax_accuracy}");
    // Early stopping watched the binary log loss of the validation set.
    let (vr, vy) = rows(2000, 2);
    let best = logistic.validation_loss[logistic.best_iteration - 1];
    assert!((evaluate(&logistic, &vr, &vy).0 - best).abs() < 1e-12, "{best}");
}

#[test]
fn probabilities_are_the_sigmoid_of_the_raw_score() {
    let booster = fit(Objective::Logistic);
    let (rows, _) = rows(2000, 4);
    let (mut raw, mut p) = ([0.0], [0.0; 2]);
    for row in rows.chunks(3).chain([[f64::NAN, 5.0, 1.0].as_slice()]) {
        booster.predict_raw(row, &mut raw);
        booster.predict_proba(row, &mut p);
        let sigma = 1.0 / (1.0 + (-raw[0]).exp());
        assert!((p[1] - sigma).abs() <= 1e-15 && (p[0] - (1.0 - sigma)).abs() <= 1e-15, "{p:?} {sigma}");
    }
}

#[test]
fn the_spec_is_the_equivalent_two_class_softmax() {
    let booster = fit(Objective::Logistic);
    let spec = booster.to_spec(&["no".into(), "yes".into()]);
    assert_eq!(
        (spec.classes.as_slice(), spec.output),
        (["no".to_owned(), "yes".to_owned()].as_slice(), Output::Softmax)
    );
    let (_, labels) = rows(6000, 1);
    let rate = labels.iter().filter(|&&y| y == 1).count() as f64 / 6000.0;
    assert_eq!(spec.init_scores, [0.0, (rate / (1.0 - rate)).ln()]);
    assert!(spec.trees.len() == booster.n_trees() && spec.trees.iter().all(|t| t.class == 1));
    let engine = Engine::compile(&spec).expect("compile");
    let (rows, _) = rows(2000, 5);
    let (mut p, mut q) = ([0.0; 2], [0.0; 2]);
    for row in rows.chunks(3) {
        booster.predict_proba(row, &mut p);
        let mut by_hand = spec_scores(&spec, row);
        crate::engine::softmax(&mut by_hand);
        assert_eq!(p.to_vec(), by_hand);
        engine.predict_proba(row, &mut q);
        assert!(p.iter().zip(&q).all(|(a, b)| (a - b).abs() <= 1e-12), "{p:?} {q:?}");
    }
}

#[test]
fn labels_must_be_0_or_1() {
    let rows = [0.0, 1.0, 0.0, 0.5, 2.0, 1.0];
    let run = |labels: Labels<'_>| {
        let set = Dataset { rows: &rows, labels };
        train(&Params::default(), &KINDS, Objective::Logistic, set, set, &Silent).map(|_| ())
    };
    assert_eq!(run(Labels::Classes(&[0, 1])), Ok(()));
    assert!(matches!(run(Labels::Classes(&[0, 2])), Err(InputError::Label { row: 1, .. })));
    assert!(matches!(run(Labels::Values(&[0.0, 1.0])), Err(InputError::LabelKind { expected: "class", .. })));
    // Every label the same: a finite init score, and a prediction close to it.
    let set = Dataset { rows: &rows, labels: Labels::Classes(&[1, 1]) };
    let booster = train(&Params::default(), &KINDS, Objective::Logistic, set, set, &Silent).expect("train");
    let spec = booster.to_spec(&["no".into(), "yes".into()]);
    assert!(spec.init_scores[1] > 30.0 && spec.init_scores[1] < 40.0, "{:?}", spec.init_scores);
    assert_eq!(serde_json::to_string(&Objective::Logistic).expect("json"), r#"{"name":"logistic"}"#);
}
