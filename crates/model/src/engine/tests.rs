//! Unit tests of the engine: exactness of the compiled layout, refusal of malformed, oversized
//! and overflowing ensembles, and finite probabilities.

use super::*;

mod bins;

fn spec(trees: Vec<TreeSpec>) -> EnsembleSpec {
    EnsembleSpec {
        format: ENSEMBLE_FORMAT.to_owned(),
        n_features: 2,
        classes: vec!["A".into(), "B".into()],
        init_scores: vec![0.0, 0.0],
        trees,
        output: Output::Softmax,
    }
}

/// x0 <= 1 → leaf 0; else (code of x1 in {2,3} → leaf 1, else leaf 2).
fn mixed_tree() -> TreeSpec {
    TreeSpec {
        class: 1,
        nodes: vec![
            NodeSpec { feature: 0, test: SplitTest::Threshold(1.0), left: -1, right: 1, missing_left: true },
            NodeSpec { feature: 1, test: SplitTest::Categories(vec![2, 3]), left: !1, right: !2, missing_left: true },
        ],
        leaves: vec![10.0, 20.0, 30.0],
    }
}

/// `spec` compiled with narrow bins and with wide bins (each where the ensemble allows it).
fn both(spec: &EnsembleSpec) -> Vec<Engine> {
    let depth = verify::check(spec).expect("valid");
    let compile = |width: Width| {
        let slots = compile::binning(spec, width).ok().filter(|_| compile::holds(width, spec))?;
        Some(compile::compile_as(spec, depth, width, slots).expect("compiles"))
    };
    [NARROW, WIDE].into_iter().filter_map(compile).collect()
}

fn narrow(engine: &Engine) -> bool {
    matches!(engine.tables, Tables::Narrow(_))
}

fn raw(engine: &Engine, row: [f64; 2]) -> f64 {
    let mut s = [0.0; 2];
    engine.raw_scores(&row, &mut s);
    s[1]
}

#[test]
fn numeric_and_categorical_splits_and_padding() {
    let engines = both(&spec(vec![mixed_tree()]));
    assert_eq!(engines.len(), 2);
    assert!(narrow(&Engine::compile(&spec(vec![mixed_tree()])).expect("compiles")), "narrow when it can be");
    for engine in &engines {
        numeric_and_categorical(engine);
    }
}

fn numeric_and_categorical(engine: &Engine) {
    assert_eq!(engine.depth(), 2);
    assert_eq!(raw(engine, [1.0, 2.0]), 10.0, "x <= threshold goes left (padded leaf)");
    assert_eq!(raw(engine, [-5.0, 9.0]), 10.0);
    assert_eq!(raw(engine, [1.5, 2.0]), 20.0);
    assert_eq!(raw(engine, [1.5, 3.0]), 20.0);
    assert_eq!(raw(engine, [1.5, 0.0]), 30.0, "unseen code 0 not in the set goes right");
    assert_eq!(raw(engine, [1.5, 255.0]), 30.0);
    assert_eq!(raw(engine, [1.5, 100.0]), 30.0);
}

#[test]
fn batch_equals_single_rows() {
    for engine in both(&spec(vec![mixed_tree(), TreeSpec { class: 0, nodes: vec![], leaves: vec![0.5] }])) {
        batch_equals_rows(&engine);
    }
}

fn batch_equals_rows(engine: &Engine) {
    let rows: Vec<f64> = (0..100).flat_map(|i| [f64::from(i % 3), f64::from(i % 5)]).collect();
    let mut batch = vec![0.0; 200];
    engine.predict_batch(&rows, &mut batch);
    let mut parallel = vec![0.0; 200];
    engine.predict_batch_parallel(&rows, &mut parallel);
    for (r, row) in rows.chunks(2).enumerate() {
        let mut p = [0.0; 2];
        engine.predict_proba(row, &mut p);
        assert_eq!(&batch[2 * r..2 * r + 2], &p);
        assert_eq!(&parallel[2 * r..2 * r + 2], &p);
        assert!((p[0] + p[1] - 1.0).abs() < 1e-12);
    }
}

/// Walks a tree spec directly (the reference for the compiled engine): NaN follows
/// `missing_left` at a threshold and is code 255 at a category split.
fn walk(tree: &TreeSpec, row: &[f64]) -> f64 {
    let mut child = if tree.nodes.is_empty() { -1 } else { 0 };
    while child >= 0 {
        let node = &tree.nodes[child as usize];
        let x = row[node.feature];
        let left = match &node.test {
            SplitTest::Threshold(_) if x.is_nan() => node.missing_left,
            SplitTest::Threshold(t) => x <= *t,
            SplitTest::Categories(codes) if x.is_nan() => codes.contains(&255),
            SplitTest::Categories(codes) => codes.contains(&((x as u32).min(255))),
        };
        child = if left { node.left } else { node.right };
    }
    tree.leaves[usize::try_from(!child).expect("leaf")]
}

/// Root: x0 <= 0 (missing right) → (x1 <= 5 (missing left) → leaf 0 | leaf 1), else
/// (x1 codes {1, 255} → leaf 2 | leaf 3).
fn missing_tree() -> TreeSpec {
    TreeSpec {
        class: 1,
        nodes: vec![
            NodeSpec { feature: 0, test: SplitTest::Threshold(0.0), left: 1, right: 2, missing_left: false },
            NodeSpec { feature: 1, test: SplitTest::Threshold(5.0), left: !0, right: !1, missing_left: true },
            NodeSpec { feature: 2, test: SplitTest::Categories(vec![1, 255]), left: !2, right: !3, missing_left: true },
        ],
        leaves: vec![1.0, 2.0, 3.0, 4.0],
    }
}

#[test]
fn missing_values_follow_each_nodes_missing_left() {
    let spec = EnsembleSpec { n_features: 3, ..spec(vec![missing_tree()]) };
    let engines = both(&spec);
    assert_eq!(engines.len(), 2);
    for engine in &engines {
        missing_values_follow(engine, &spec);
    }
}

fn missing_values_follow(engine: &Engine, spec: &EnsembleSpec) {
    let nan = f64::NAN;
    let cases = [
        ([-1.0, 1.0, 0.0], 1.0),
        ([-1.0, nan, 0.0], 1.0), // x1 missing: left
        ([nan, nan, 0.0], 4.0),  // x0 missing: right, code 0 not in {1, 255}
        ([nan, 9.0, 1.0], 3.0),
        ([nan, 9.0, nan], 3.0),   // a missing code is 255: in the set
        ([1.0, 0.0, 300.0], 3.0), // codes above 255 saturate to 255
        ([1.0, 0.0, 2.0], 4.0),
        ([f64::INFINITY, 0.0, 2.0], 4.0),
        ([f64::NEG_INFINITY, f64::INFINITY, 2.0], 2.0),
    ];
    let mut rows = Vec::new();
    for (row, want) in cases {
        let mut s = [0.0; 2];
        engine.raw_scores(&row, &mut s);
        assert_eq!(s[1], want, "{row:?}");
        assert_eq!(walk(&spec.trees[0], &row), want, "{row:?}: the reference walk agrees");
        rows.extend(row);
    }
    let mut batch = vec![0.0; 2 * cases.len()];
    engine.predict_batch(&rows, &mut batch);
    for (r, row) in rows.chunks(3).enumerate() {
        let mut p = [0.0; 2];
        engine.predict_proba(row, &mut p);
        assert_eq!(&batch[2 * r..2 * r + 2], &p, "{row:?}");
    }
    // Without the 255 in the set a missing code goes right, as an unseen code.
    let mut tree = missing_tree();
    tree.nodes[2].test = SplitTest::Categories(vec![1]);
    for engine in both(&EnsembleSpec { n_features: 3, ..self::spec(vec![tree]) }) {
        let mut s = [0.0; 2];
        engine.raw_scores(&[nan, 9.0, nan], &mut s);
        assert_eq!(s[1], 4.0);
    }
}

#[test]
fn old_artifacts_send_missing_values_left_and_predict_as_before() {
    // No `missing_left` in the JSON: left, as every artifact written before it existed implies.
    let json = r#"{"feature":0,"threshold":1.0,"left":-1,"right":-2}"#;
    let node: NodeSpec = serde_json::from_str(json).expect("parse");
    assert!(node.missing_left);
    assert_eq!(serde_json::to_string(&node).expect("json"), json, "left stays implicit");
    let right = NodeSpec { missing_left: false, ..node };
    let text = serde_json::to_string(&right).expect("json");
    assert_eq!(text, r#"{"feature":0,"threshold":1.0,"left":-1,"right":-2,"missing_left":false}"#);
    assert_eq!(serde_json::from_str::<NodeSpec>(&text).expect("parse"), right, "round trip");
    let spec = self::spec(vec![missing_tree_two_features()]);
    let back: EnsembleSpec = serde_json::from_str(&serde_json::to_string(&spec).expect("json")).expect("parse");
    assert_eq!(back, spec);
    let engine = Engine::compile(&back).expect("compiles");
    assert_eq!(raw(&engine, [f64::NAN, 0.0]), 20.0, "root sends NaN right, then x1 = 0 <= 5 left");
    assert_eq!(raw(&engine, [f64::NAN, f64::NAN]), 30.0, "second node sends NaN right");
    assert_eq!(raw(&engine, [-1.0, f64::NAN]), 10.0);
}

/// x0 <= 1 (missing right) → leaf 0, else x1 <= 5 (missing right) → leaf 1 | leaf 2.
fn missing_tree_two_features() -> TreeSpec {
    TreeSpec {
        class: 1,
        nodes: vec![
            NodeSpec { feature: 0, test: SplitTest::Threshold(1.0), left: -1, right: 1, missing_left: false },
            NodeSpec { feature: 1, test: SplitTest::Threshold(5.0), left: !1, right: !2, missing_left: false },
        ],
        leaves: vec![10.0, 20.0, 30.0],
    }
}

#[test]
fn identity_output_returns_the_raw_sums() {
    let mut spec = spec(vec![
        TreeSpec { class: 0, nodes: vec![], leaves: vec![0.25] },
        TreeSpec { class: 1, nodes: vec![], leaves: vec![0.75] },
    ]);
    spec.output = Output::Identity;
    let engine = Engine::compile(&spec).expect("compiles");
    let mut p = [0.0; 2];
    engine.predict_proba(&[0.0, 0.0], &mut p);
    assert_eq!(p, [0.25, 0.75]);
    let mut batch = [0.0; 2];
    engine.predict_batch(&[0.0, 0.0], &mut batch);
    assert_eq!(batch, p);
    assert!(!serde_json::to_string(&spec).expect("json").contains("softmax"), "default stays implicit");
}

#[test]
fn malformed_trees_are_refused_with_the_tree_index() {
    let mut cycle = mixed_tree();
    cycle.nodes[1].left = 0;
    let err = Engine::compile(&spec(vec![mixed_tree(), cycle])).expect_err("cycle");
    assert!(matches!(err, EngineError::Tree { tree: 1, .. }), "{err}");
    let mut bad_feature = mixed_tree();
    bad_feature.nodes[0].feature = 7;
    assert!(Engine::compile(&spec(vec![bad_feature])).is_err());
    let mut bad_leaves = mixed_tree();
    bad_leaves.leaves.pop();
    assert!(Engine::compile(&spec(vec![bad_leaves])).is_err());
    let mut bad_format = spec(vec![]);
    bad_format.format = "lightgbm".into();
    assert!(matches!(Engine::compile(&bad_format), Err(EngineError::Format { .. })));
}

#[test]
fn serialized_form_is_readable() {
    let json = serde_json::to_string(&mixed_tree().nodes[0]).expect("json");
    assert_eq!(json, r#"{"feature":0,"threshold":1.0,"left":-1,"right":1}"#);
    let back: NodeSpec = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, mixed_tree().nodes[0]);
}

/// A chain of `depth` threshold nodes on feature 0 (one leaf per level, plus the last).
fn chain(depth: i32) -> TreeSpec {
    let nodes = (0..depth)
        .map(|i| NodeSpec {
            feature: 0,
            test: SplitTest::Threshold(f64::from(i)),
            left: !i,
            right: if i + 1 < depth { i + 1 } else { !depth },
            missing_left: true,
        })
        .collect();
    TreeSpec { class: 0, nodes, leaves: vec![0.5; depth as usize + 1] }
}

#[test]
fn the_compiled_size_is_computed_and_capped_before_allocating() {
    // Issue 10: 100,000 single leaves plus one depth-12 chain verify, and laid out complete at
    // depth 12 would take 4.9 GB.
    let mut trees: Vec<TreeSpec> =
        (0..100_000).map(|i| TreeSpec { class: i % 2, nodes: vec![], leaves: vec![0.0] }).collect();
    trees.push(chain(12));
    let wide = spec(trees);
    let bytes = compiled_bytes(&wide, 12);
    assert!(bytes > 4_900_000_000, "{bytes}");
    let err = Engine::compile(&wide).expect_err("too large");
    assert_eq!(err, EngineError::TooLarge { bytes, trees: 100_001, depth: 12 });
    let message = err.to_string();
    assert!(message.contains(&bytes.to_string()) && message.contains(&MAX_COMPILED_BYTES.to_string()), "{message}");

    // The estimate covers what a compiled engine really holds.
    let engine = Engine::compile(&spec(vec![mixed_tree(), chain(5)])).expect("compiles");
    let held = engine.nodes.len() * size_of::<Node>()
        + engine.leaves.len() * size_of::<f64>()
        + engine.tree_class.len() * size_of::<usize>()
        + match &engine.tables {
            Tables::Narrow(tables) => size_of_val(&**tables),
            Tables::Wide(tables) => size_of_val(&**tables),
        };
    assert!(held as u64 <= compiled_bytes(&spec(vec![mixed_tree(), chain(5)]), engine.depth()), "{held}");
}

#[test]
fn ensembles_whose_scores_can_overflow_are_refused_naming_the_bound() {
    // Issue 10: two finite leaves of 1e308 sum to infinity, and the softmax to NaN.
    let overflow = spec(vec![
        TreeSpec { class: 1, nodes: vec![], leaves: vec![1e308] },
        TreeSpec { class: 1, nodes: vec![], leaves: vec![1e308] },
    ]);
    let err = Engine::compile(&overflow).expect_err("overflows");
    assert!(matches!(&err, EngineError::ScoreBound { class, bound } if class == "B" && bound.is_infinite()), "{err}");
    assert!(err.to_string().contains("score bound 1e6"), "{err}");
    // The bound counts each tree's largest |leaf|, whichever sign, plus the init score.
    let mut near = spec(vec![
        TreeSpec { class: 0, nodes: vec![], leaves: vec![-4e5] },
        TreeSpec {
            class: 0,
            nodes: vec![NodeSpec {
                feature: 0,
                test: SplitTest::Threshold(0.0),
                left: -1,
                right: !1,
                missing_left: true,
            }],
            leaves: vec![1.0, -4e5],
        },
    ]);
    near.init_scores = vec![2e5, 0.0];
    let engine = Engine::compile(&near).expect("exactly at the bound");
    near.init_scores = vec![2.1e5, 0.0];
    assert!(matches!(Engine::compile(&near), Err(EngineError::ScoreBound { .. })));
    // At the bound the probabilities are still finite.
    let mut p = [0.0; 2];
    engine.predict_proba(&[1.0, 0.0], &mut p);
    assert_eq!(p, [0.0, 1.0]);
}

#[test]
fn probabilities_are_always_finite() {
    for mut scores in
        [[f64::NAN, 1.0, 2.0], [f64::INFINITY, f64::INFINITY, 0.0], [f64::NEG_INFINITY; 3], [1e308, -1e308, 0.0]]
    {
        softmax(&mut scores);
        assert!(scores.iter().all(|p| p.is_finite() && (0.0..=1.0).contains(p)), "{scores:?}");
        assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{scores:?}");
    }
    // Identity outputs get the same guard.
    let guarded = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY].map(spec::bounded);
    assert_eq!(guarded, [-MAX_SCORE_MAGNITUDE, MAX_SCORE_MAGNITUDE, -MAX_SCORE_MAGNITUDE]);
}

#[test]
fn a_node_has_exactly_one_test() {
    let both = r#"{"feature":0,"threshold":1.0,"categories":[1],"left":-1,"right":-2}"#;
    let none = r#"{"feature":0,"left":-1,"right":-2}"#;
    for json in [both, none] {
        let err = serde_json::from_str::<NodeSpec>(json).expect_err("refused");
        assert!(err.to_string().contains("either a `threshold` or `categories`"), "{err}");
    }
    let categories = r#"{"feature":4,"categories":[1,3],"left":-1,"right":-2}"#;
    let node: NodeSpec = serde_json::from_str(categories).expect("parse");
    assert_eq!(node.test, SplitTest::Categories(vec![1, 3]));
    assert_eq!(serde_json::to_string(&node).expect("json"), categories);
}

/// A one-output regression ensemble predicting `units` with `output`: init `init`, then a
/// single-leaf tree per value of `leaves`.
fn regression(output: Output, init: f64, leaves: &[f64]) -> EnsembleSpec {
    EnsembleSpec {
        format: ENSEMBLE_FORMAT.to_owned(),
        n_features: 2,
        classes: vec!["units".into()],
        init_scores: vec![init],
        trees: leaves.iter().map(|&v| TreeSpec { class: 0, nodes: vec![], leaves: vec![v] }).collect(),
        output,
    }
}

#[test]
fn exp_output_predicts_the_exponential_of_the_raw_score() {
    let mut spec = regression(Output::Exp, 2f64.ln(), &[]);
    let mut tree = mixed_tree();
    tree.class = 0;
    tree.leaves = vec![0.5, -0.25, 0.0];
    spec.trees.push(tree);
    let json = serde_json::to_string(&spec).expect("json");
    assert!(json.contains(r#""output":"exp""#), "{json}");
    let back: EnsembleSpec = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, spec);
    let engine = Engine::compile(&back).expect("compiles");
    assert_eq!(engine.n_classes(), 1);
    assert_eq!(engine.output(), Output::Exp);
    let rows = [0.0, 0.0, 1.5, 2.0, 1.5, 0.0];
    let expected = [(2f64.ln() + 0.5).exp(), (2f64.ln() - 0.25).exp(), 2.0];
    for (row, want) in rows.chunks(2).zip(expected) {
        let got = engine.predict_value(row);
        assert!((got - want).abs() <= 1e-15 * want, "{row:?}: {got} != {want}");
    }
    let mut batch = [0.0; 3];
    engine.predict_values(&rows, &mut batch);
    let mut parallel = [0.0; 3];
    engine.predict_batch_parallel(&rows, &mut parallel);
    for (r, row) in rows.chunks(2).enumerate() {
        assert_eq!(batch[r], engine.predict_value(row));
        assert_eq!(parallel[r], batch[r]);
    }
}

#[test]
fn identity_regression_predicts_the_raw_score() {
    let engine = Engine::compile(&regression(Output::Identity, 3.5, &[0.25, -1.0])).expect("compiles");
    assert_eq!(engine.predict_value(&[0.0, 0.0]), 2.75);
}

#[test]
fn a_one_class_softmax_is_refused() {
    let mut spec = regression(Output::Softmax, 0.0, &[0.5]);
    let err = Engine::compile(&spec).expect_err("softmax of one class");
    assert!(matches!(err, EngineError::Ensemble(_)), "{err}");
    spec.classes.clear();
    spec.init_scores.clear();
    spec.output = Output::Exp;
    assert!(matches!(Engine::compile(&spec), Err(EngineError::Ensemble(_))), "no output at all");
}

#[test]
fn exp_ensembles_whose_scores_could_overflow_are_refused() {
    // Hand-written hostile model.json: two leaves of 400 reach 800, e^800 overflows to infinity.
    let hostile = r#"{"format":"retail-gbdt/1","n_features":2,"classes":["units"],"init_scores":[0.5],
        "trees":[{"class":0,"nodes":[{"feature":0,"threshold":1.0,"left":-1,"right":-2}],"leaves":[-3.0,400.0]},
                 {"class":0,"nodes":[],"leaves":[400.0]}],
        "output":"exp"}"#;
    let spec: EnsembleSpec = serde_json::from_str(hostile).expect("parse");
    let err = Engine::compile(&spec).expect_err("exp could overflow");
    assert!(matches!(err, EngineError::ExpBound { ref class, bound } if class == "units" && bound == 800.5), "{err}");
    assert!(err.to_string().contains("690"), "{err}");
    // The same sums are fine without the exponential, and right at the bound with it.
    assert!(Engine::compile(&EnsembleSpec { output: Output::Identity, ..spec.clone() }).is_ok());
    assert!(Engine::compile(&regression(Output::Exp, 0.0, &[MAX_EXP_SCORE / 2.0, MAX_EXP_SCORE / 2.0])).is_ok());
    assert!(Engine::compile(&regression(Output::Exp, 0.0, &[MAX_EXP_SCORE, 1e-9])).is_err());
    // Only the upper end matters: very negative scores predict 0, a finite value.
    let low = Engine::compile(&regression(Output::Exp, -1.0, &[-900.0, -900.0])).expect("compiles");
    assert_eq!(low.predict_value(&[0.0, 0.0]), 0.0);
    // Overflowing sums are refused, not wrapped around.
    let huge = regression(Output::Exp, 0.0, &[f64::MAX, f64::MAX]);
    assert!(matches!(Engine::compile(&huge), Err(EngineError::ScoreBound { .. })));
}

#[test]
fn bounded_exp_is_finite_everywhere() {
    for s in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300, 709.9, 690.0, 0.0] {
        let v = bounded_exp(s);
        assert!(v.is_finite() && (0.0..1e300).contains(&v), "{s} -> {v}");
    }
    assert_eq!(bounded_exp(1.0), 1f64.exp());
    assert_eq!(bounded_exp(1e9), MAX_EXP_SCORE.exp());
}
