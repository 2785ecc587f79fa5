//! TreeSHAP against brute-force Shapley values of the path-dependent value function, on trees
//! with numeric, categorical and missing-value splits.

use super::*;
use crate::engine::{ENSEMBLE_FORMAT, Engine, NodeSpec, SplitTest, TreeSpec};

fn node(feature: usize, test: SplitTest, left: i32, right: i32, missing_left: bool) -> NodeSpec {
    NodeSpec { feature, test, left, right, missing_left }
}

/// Two classes, four features (feature 3 never split on), trees splitting twice on feature 0.
fn spec() -> EnsembleSpec {
    let t0 = TreeSpec {
        class: 0,
        nodes: vec![
            node(0, SplitTest::Threshold(1.0), 1, 2, false),
            node(1, SplitTest::Categories(vec![1, 3, 255]), -1, !1, true),
            node(0, SplitTest::Threshold(4.0), !2, 3, true),
            node(2, SplitTest::Threshold(0.5), !3, !4, false),
        ],
        leaves: vec![0.3, -1.2, 2.5, 0.7, -0.4],
    };
    let t1 = TreeSpec {
        class: 1,
        nodes: vec![node(2, SplitTest::Threshold(0.0), 1, !2, true), node(0, SplitTest::Threshold(2.0), -1, !1, false)],
        leaves: vec![1.5, -0.5, 0.25],
    };
    let t2 = TreeSpec { class: 1, nodes: vec![], leaves: vec![0.125] };
    EnsembleSpec {
        format: ENSEMBLE_FORMAT.to_owned(),
        n_features: 4,
        classes: vec!["A".into(), "B".into()],
        init_scores: vec![-0.2, 0.1],
        trees: vec![t0, t1, t2],
        output: Output::Softmax,
    }
}

fn covers() -> Vec<Vec<f64>> {
    vec![vec![10.0, 3.0, 7.0, 2.0, 5.0], vec![4.0, 9.0, 6.0], vec![19.0]]
}

/// E[tree(x) | x_S] with absent features following both children by cover.
fn conditional(forest: &Forest, node: usize, row: &[f64], present: u32) -> f64 {
    let n = &forest.nodes[node];
    if n.is_leaf() {
        return n.value;
    }
    if present >> n.feature & 1 == 1 {
        let next = if forest.goes_left(n, row[n.feature]) { n.left } else { n.right };
        return conditional(forest, next, row, present);
    }
    let (l, r) = (&forest.nodes[n.left], &forest.nodes[n.right]);
    (l.cover * conditional(forest, n.left, row, present) + r.cover * conditional(forest, n.right, row, present))
        / n.cover
}

fn factorial(n: usize) -> f64 {
    (1..=n).map(|i| i as f64).product()
}

/// Shapley values of every feature for class `class` by enumerating coalitions.
fn brute_force(spec: &EnsembleSpec, row: &[f64], class: usize) -> Vec<f64> {
    let mut forest = Forest::of(spec);
    forest.set_covers(&covers());
    let m = spec.n_features;
    let value = |s: u32| -> f64 {
        forest.trees.iter().filter(|t| t.class == class).map(|t| conditional(&forest, t.root, row, s)).sum()
    };
    (0..m)
        .map(|i| {
            (0..1u32 << m)
                .filter(|s| s >> i & 1 == 0)
                .map(|s| {
                    let k = s.count_ones() as usize;
                    factorial(k) * factorial(m - k - 1) / factorial(m) * (value(s | 1 << i) - value(s))
                })
                .sum()
        })
        .collect()
}

fn rows() -> Vec<[f64; 4]> {
    vec![
        [0.5, 1.0, 0.2, 9.0],
        [3.0, 2.0, 0.7, 0.0],
        [5.0, f64::NAN, -1.0, 1.0],
        [f64::NAN, 3.0, f64::NAN, 2.0],
        [1.0, 300.0, 0.5, f64::NAN],
        [4.0, -2.0, 1e9, 3.0],
    ]
}

fn explainer() -> Explainer {
    Explainer::new(&spec(), &covers(), Attribution::identity((0..4).map(|f| format!("f{f}")).collect()), false)
        .expect("explainer")
}

#[test]
fn contributions_equal_brute_force_shapley_values_including_missing_values() {
    // With leaf tables (the default) and by recursion (no table budget).
    for explainer in [explainer(), explainer().with_table_budget(0)] {
        assert_brute_force(&explainer);
    }
}

fn assert_brute_force(explainer: &Explainer) {
    for row in rows() {
        let e = explainer.explain(&row);
        for class in 0..2 {
            let expected = brute_force(&spec(), &row, class);
            for (got, want) in e.of_output(class).iter().zip(&expected) {
                assert!(
                    (got - want).abs() < 1e-12,
                    "row {row:?} class {class}: {:?} vs {expected:?}",
                    e.of_output(class)
                );
            }
        }
    }
}

#[test]
fn base_plus_contributions_is_the_engines_margin() {
    let explainer = explainer();
    let engine = Engine::compile(&spec()).expect("compiles");
    for row in rows() {
        let e = explainer.explain(&row);
        let mut margin = [0.0; 2];
        engine.raw_scores(&row, &mut margin);
        for (c, m) in margin.iter().enumerate() {
            assert!((e.margin(c) - m).abs() < 1e-12, "row {row:?} class {c}: {} vs {m}", e.margin(c));
        }
    }
}

#[test]
fn a_feature_no_split_uses_gets_exactly_zero() {
    for row in rows() {
        let e = explainer().explain(&row);
        assert_eq!(e.of_output(0)[3], 0.0);
        assert_eq!(e.of_output(1)[3], 0.0);
    }
}

#[test]
fn covers_must_fit_every_leaf() {
    let attribution = || Attribution::identity((0..4).map(|f| format!("f{f}")).collect());
    let mut short = covers();
    short[1].pop();
    let err = Explainer::new(&spec(), &short, attribution(), false).expect_err("short");
    assert!(matches!(err, ExplainError::Covers(ref r) if r.contains("tree 1")), "{err}");
    let mut zero = covers();
    zero[0][2] = 0.0;
    assert!(Explainer::new(&spec(), &zero, attribution(), false).is_err());
}

#[test]
fn covers_from_rows_count_each_leaf_as_the_engine_routes() {
    let flat: Vec<f64> = rows().concat();
    let counts = file::leaf_covers(&spec(), &flat);
    assert_eq!(counts.iter().map(|c| c.iter().sum::<f64>()).collect::<Vec<_>>(), vec![6.0; 3]);
    // Row 2: feature 0 = 5 > 4, feature 2 = -1 <= 0.5: tree 0 leaf 3.
    let forest = Forest::of(&spec());
    assert_eq!(forest.leaf_of(0, &rows()[2]), 3);
}

#[test]
fn leaf_tables_agree_with_the_recursion_on_the_shipped_model_and_fit_the_budget() {
    let artifact = crate::artifact::Artifact::embedded_default().expect("embedded model");
    let tabled = artifact.explainer.expect("the shipped model has covers");
    assert!((0..tabled.forest.trees.len()).all(|t| tabled.tables.has(t)), "every tree of depth 5 is tabled");
    // 228,264 numbers (1.8 MB): Σ over leaves of 2^k × k for k distinct path features.
    assert!(tabled.tables.len() <= 250_000, "{} table numbers", tabled.tables.len());
    let recursive = tabled.clone().with_table_budget(0);
    assert!(!recursive.tables.has(0));
    // What the server weighs to explain one row on its runtime thread: 3,440 leaves of depth 5.
    assert_eq!((tabled.row_steps(), recursive.row_steps()), (Some(17_200), None));
    let nf = tabled.n_features;
    // Values over the features' scales, category codes in and out of range, missing values.
    let value = |i: usize| match i % 13 {
        0 => f64::NAN,
        k if k < 6 => (i * 7919 % 41) as f64,
        _ => (i * 104_729 % 997) as f64 / 3.7 - 20.0,
    };
    for r in 0..2_000 {
        let row: Vec<f64> = (0..nf).map(|f| value(r * nf + f * 31 + r / 7)).collect();
        let (a, b) = (tabled.feature_contributions(&row), recursive.feature_contributions(&row));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "row {row:?}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn a_tree_beyond_the_budget_is_explained_by_recursion() {
    // Tree 0's table: four leaves of 2 path features (2² × 2 numbers each) and one of 1 (2 × 1),
    // 34 numbers; tree 1's: two of 2 and one of 1, 18; tree 2 (a leaf): none.
    let budget = 20;
    let explainer = explainer().with_table_budget(budget);
    assert!(!explainer.tables.has(0) && explainer.tables.has(1) && explainer.tables.has(2), "tree 0 does not fit");
    assert_brute_force(&explainer);
}
