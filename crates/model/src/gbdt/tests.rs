//! Unit tests of the trainer: the softmax classifier here, the regression objectives in
//! [`regression`].

mod golden;
mod grower;
mod logistic;
mod missing;
mod regression;
mod training_predictions;

use super::*;
use crate::engine::Engine;
use crate::progress::Silent;
use crate::rng::Rng;

/// Two numeric features and one categorical; the class depends on all three.
fn toy(n: usize, seed: u64) -> (Vec<f64>, Vec<u8>) {
    let mut rng = Rng::new(seed, 0, 0);
    let mut rows = Vec::with_capacity(n * 3);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let x0 = rng.normal();
        let x1 = (rng.uniform() * 100.0).round() / 10.0;
        let c = rng.below(6);
        let s = 1.5 * x0 + 0.3 * (x1 - 5.0) + [1.0, -1.0, 0.5, 0.0, -0.5, 2.0][c] + rng.normal();
        rows.extend([x0, x1, c as f64]);
        labels.push(if s < -1.0 {
            0
        } else if s < 1.0 {
            1
        } else {
            2
        });
    }
    (rows, labels)
}

const KINDS: [FeatureKind; 3] = [FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Categorical { n_codes: 6 }];

fn fit(params: &Params) -> Booster {
    let (tr, ty) = toy(6000, 1);
    let (vr, vy) = toy(2000, 2);
    let (train_set, valid_set) =
        (Dataset { rows: &tr, labels: Labels::Classes(&ty) }, Dataset { rows: &vr, labels: Labels::Classes(&vy) });
    train(params, &KINDS, Objective::Softmax { n_classes: 3 }, train_set, valid_set, &Silent).expect("train")
}

#[test]
fn learns_and_stops_early() {
    let booster = fit(&Params { max_rounds: 300, ..Params::default() });
    assert!(
        booster.best_iteration > 5 && booster.best_iteration < booster.rounds_run,
        "{} of {}",
        booster.best_iteration,
        booster.rounds_run
    );
    assert!(booster.rounds_run < 300, "early stopping");
    let (rows, labels) = toy(3000, 3);
    let mut p = [0.0; 3];
    let correct = rows
        .chunks(3)
        .zip(&labels)
        .filter(|(row, y)| {
            booster.predict_proba(row, &mut p);
            crate::metrics::argmax(&p) == usize::from(**y)
        })
        .count();
    let accuracy = correct as f64 / 3000.0;
    assert!(accuracy > 0.7, "{accuracy}");
    let first = booster.validation_loss[0];
    assert!(booster.validation_loss[booster.best_iteration - 1] < first * 0.8);
}

#[test]
fn deterministic() {
    let params = Params { max_rounds: 30, ..Params::default() };
    let a = fit(&params).to_spec(&["A".into(), "B".into(), "C".into()]);
    let b = fit(&params).to_spec(&["A".into(), "B".into(), "C".into()]);
    assert_eq!(serde_json::to_string(&a).expect("json"), serde_json::to_string(&b).expect("json"));
}

#[test]
fn compiled_engine_matches_the_trainer() {
    let booster = fit(&Params { max_rounds: 40, ..Params::default() });
    let engine = Engine::compile(&booster.to_spec(&["A".into(), "B".into(), "C".into()])).expect("compile");
    let (rows, _) = toy(5000, 9);
    let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
    for row in rows.chunks(3) {
        booster.predict_proba(row, &mut a);
        engine.predict_proba(row, &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() <= 1e-12), "{a:?} {b:?}");
    }
}

#[test]
fn bins_respect_thresholds() {
    let m = BinMapper::fit(FeatureKind::Numeric, [1.0, 2.0, 2.0, 3.0].into_iter(), 255);
    assert_eq!(m, BinMapper::Numeric { upper: vec![1.5, 2.5] });
    assert_eq!([0.0, 1.0, 1.5, 1.6, 2.5, 9.0].map(|x| m.bin(x)), [0, 0, 0, 1, 1, 2]);
    let many = BinMapper::fit(FeatureKind::Numeric, (0..10_000).map(f64::from), 16);
    assert!(many.n_bins() <= 16 + 1, "16 value bins and the missing one");
    assert_eq!(m.n_bins(), 4);
    assert_eq!(m.bin(f64::NAN), 3, "the missing bin follows the value bins");
    let with_missing = BinMapper::fit(FeatureKind::Numeric, [f64::NAN, 1.0, 2.0, -f64::NAN].into_iter(), 255);
    assert_eq!(with_missing, BinMapper::Numeric { upper: vec![1.5] });
    let all_missing = BinMapper::fit(FeatureKind::Numeric, [f64::NAN; 3].into_iter(), 255);
    assert_eq!((all_missing.n_bins(), all_missing.bin(f64::NAN), all_missing.bin(4.0)), (2, 1, 0));
}

#[test]
fn bin_values_sort_as_total_cmp_does() {
    let mut rng = Rng::new(3, 0, 0);
    let mut values: Vec<f64> = (0..5000).map(|_| rng.normal() * 10f64.powi(rng.below(20) as i32 - 10)).collect();
    values.extend([
        0.0,
        -0.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN_POSITIVE / 4.0,
        -f64::MIN_POSITIVE / 4.0,
        1.0,
        1.0,
    ]);
    let mut expected = values.clone();
    expected.sort_by(f64::total_cmp);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&bins::sorted(values.into_iter())), bits(&expected));
}
