//! Missing numeric values (NaN) get a bin of their own and each split learns where they go;
//! the trainer's prediction follows the serialized trees' semantics; NaN categories are refused.

use super::super::*;
use crate::engine::{EnsembleSpec, SplitTest, TreeSpec};
use crate::progress::Silent;
use crate::rng::Rng;

/// x0 uniform on a grid of 0.1 in [0, 10] and missing in a fifth of the rows, x1 uniform noise with a tenth
/// missing, x2 a category of 3; the class is `class(x0)`.
fn rows(n: usize, seed: u64, class: fn(f64) -> bool) -> (Vec<f64>, Vec<u8>) {
    let mut rng = Rng::new(seed, 11, 0);
    let (mut rows, mut labels) = (Vec::with_capacity(3 * n), Vec::with_capacity(n));
    for _ in 0..n {
        let x0 = if rng.chance(0.2) { f64::NAN } else { (100.0 * rng.uniform()).round() / 10.0 };
        let x1 = if rng.chance(0.1) { f64::NAN } else { rng.uniform() };
        rows.extend([x0, x1, rng.below(3) as f64]);
        labels.push(u8::from(class(x0)));
    }
    (rows, labels)
}

const KINDS: [FeatureKind; 3] = [FeatureKind::Numeric, FeatureKind::Numeric, FeatureKind::Categorical { n_codes: 3 }];

fn fit(class: fn(f64) -> bool, max_rounds: usize) -> Booster {
    let ((tr, ty), (vr, vy)) = (rows(4000, 1, class), rows(1000, 2, class));
    let (train_set, valid_set) =
        (Dataset { rows: &tr, labels: Labels::Classes(&ty) }, Dataset { rows: &vr, labels: Labels::Classes(&vy) });
    let params = Params { max_rounds, min_data_in_leaf: 20, ..Params::default() };
    train(&params, &KINDS, Objective::Softmax { n_classes: 2 }, train_set, valid_set, &Silent).expect("train")
}

fn accuracy(booster: &Booster, class: fn(f64) -> bool) -> f64 {
    let (rows, labels) = rows(3000, 3, class);
    let mut p = [0.0; 2];
    let correct = rows
        .chunks(3)
        .zip(&labels)
        .filter(|(row, y)| {
            booster.predict_proba(row, &mut p);
            usize::from(p[1] > p[0]) == usize::from(**y)
        })
        .count();
    correct as f64 / labels.len() as f64
}

fn root(booster: &Booster) -> crate::engine::NodeSpec {
    booster.to_spec(&["no".into(), "yes".into()]).trees[0].nodes[0].clone()
}

#[test]
fn missing_with_the_high_values_goes_right() {
    let class = |x: f64| x.is_nan() || x > 5.0;
    let booster = fit(class, 30);
    assert_eq!(accuracy(&booster, class), 1.0);
    let root = root(&booster);
    assert_eq!((root.feature, root.missing_left), (0, false), "{root:?}");
    assert!(matches!(root.test, SplitTest::Threshold(t) if (t - 5.0).abs() < 0.05), "{root:?}");
}

#[test]
fn missing_with_the_low_values_goes_left() {
    let class = |x: f64| x.is_nan() || x < 3.0;
    let booster = fit(class, 30);
    assert_eq!(accuracy(&booster, class), 1.0);
    let root = root(&booster);
    assert_eq!((root.feature, root.missing_left), (0, true), "{root:?}");
    assert!(matches!(root.test, SplitTest::Threshold(t) if (t - 3.0).abs() < 0.05), "{root:?}");
}

#[test]
fn missingness_alone_splits_every_value_from_the_missing_ones() {
    let class = |x: f64| x.is_nan();
    let booster = fit(class, 10);
    assert_eq!(accuracy(&booster, class), 1.0);
    let root = root(&booster);
    assert_eq!((root.feature, root.test, root.missing_left), (0, SplitTest::Threshold(f64::MAX), false));
}

#[test]
fn without_missing_values_the_direction_is_left() {
    let ((tr, ty), (vr, vy)) = (rows(2000, 4, |x| x > 5.0), rows(500, 5, |x| x > 5.0));
    let fill = |rows: &[f64]| -> Vec<f64> { rows.iter().map(|x| if x.is_nan() { 1.0 } else { *x }).collect() };
    let (tr, vr) = (fill(&tr), fill(&vr));
    let (train_set, valid_set) =
        (Dataset { rows: &tr, labels: Labels::Classes(&ty) }, Dataset { rows: &vr, labels: Labels::Classes(&vy) });
    let params = Params { max_rounds: 10, ..Params::default() };
    let booster = train(&params, &KINDS, Objective::Softmax { n_classes: 2 }, train_set, valid_set, &Silent);
    let spec = booster.expect("train").to_spec(&["no".into(), "yes".into()]);
    assert!(spec.trees.iter().flat_map(|t| &t.nodes).all(|n| n.missing_left));
    assert!(!serde_json::to_string(&spec).expect("json").contains("missing_left"));
}

/// The raw scores the serialized ensemble gives a row, by its documented semantics: a NaN goes
/// where `missing_left` says, `x <= threshold` and codes in the set go left.
pub(super) fn spec_scores(spec: &EnsembleSpec, row: &[f64]) -> Vec<f64> {
    let leaf = |tree: &TreeSpec| {
        let mut child = 0i32;
        while child >= 0 && !tree.nodes.is_empty() {
            let node = &tree.nodes[child as usize];
            let x = row[node.feature];
            let left = match &node.test {
                _ if x.is_nan() => node.missing_left,
                SplitTest::Threshold(t) => x <= *t,
                SplitTest::Categories(set) => set.contains(&(x as u32)),
            };
            child = if left { node.left } else { node.right };
        }
        if tree.nodes.is_empty() { 0 } else { (!child) as usize }
    };
    let mut scores = spec.init_scores.clone();
    for tree in &spec.trees {
        scores[tree.class] += tree.leaves[leaf(tree)];
    }
    scores
}

#[test]
fn the_trainer_predicts_what_the_spec_says() {
    // A noisy mix of both features, so trees split on x1 and x2 too, with missing values.
    let class = |x: f64| x.is_nan() || (x * 7.3).fract() > 0.4;
    let booster = fit(class, 25);
    let spec = booster.to_spec(&["no".into(), "yes".into()]);
    let nodes: Vec<_> = spec.trees.iter().flat_map(|t| &t.nodes).collect();
    assert!(nodes.iter().any(|n| !n.missing_left) && nodes.iter().any(|n| n.feature != 0));
    let (mut rows, _) = rows(3000, 6, class);
    rows.extend([f64::NAN, f64::NAN, 1.0, 12.0, -3.0, 0.0]);
    let mut raw = [0.0; 2];
    for row in rows.chunks(3) {
        booster.predict_raw(row, &mut raw);
        assert_eq!(raw.to_vec(), spec_scores(&spec, row), "{row:?}");
    }
}

#[test]
fn categories_must_be_codes() {
    let run = |train_value: f64, valid_value: f64| {
        let tr = [1.0, 0.0, 2.0, f64::NAN, 0.5, train_value];
        let vr = [1.0, 0.0, valid_value];
        let (train_set, valid_set) = (
            Dataset { rows: &tr, labels: Labels::Classes(&[0, 1]) },
            Dataset { rows: &vr, labels: Labels::Classes(&[0]) },
        );
        train(&Params::default(), &KINDS, Objective::Softmax { n_classes: 2 }, train_set, valid_set, &Silent)
            .map(|_| ())
    };
    assert_eq!(run(1.0, 2.0), Ok(()), "a NaN numeric value is fine");
    let err = run(f64::NAN, 0.0).expect_err("NaN category");
    assert!(matches!(err, InputError::Category { set: "training", row: 1, feature: 2, n_codes: 3, .. }), "{err}");
    assert!(err.to_string().contains("training row 1: categorical feature 2 value NaN"), "{err}");
    for bad in [3.0, -1.0, 0.5] {
        let err = run(0.0, bad).expect_err("not a code");
        assert!(matches!(err, InputError::Category { set: "validation", row: 0, feature: 2, .. }), "{err}");
    }
}

#[test]
fn leaf_covers_are_the_training_rows_each_leaf_of_the_spec_holds() {
    let class = |x: f64| x.is_nan() || (x * 7.3).fract() > 0.4;
    let booster = fit(class, 25);
    let spec = booster.to_spec(&["no".into(), "yes".into()]);
    let (train_rows, _) = rows(4000, 1, class);
    let covers = booster.leaf_covers();
    assert_eq!(covers.len(), spec.trees.len());
    assert_eq!(covers, crate::explain::leaf_covers(&spec, &train_rows), "the counts the grower kept");
}
