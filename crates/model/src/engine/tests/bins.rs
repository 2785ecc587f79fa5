//! How rows are binned: thresholds past one slot's run, narrow and wide bins, the slot limit.

use super::super::*;
use super::{both, narrow, raw, spec, walk};

#[test]
fn features_with_more_than_254_thresholds_take_extra_slots_and_stay_exact() {
    // 300 stumps on feature 0 and 300 on feature 1 (700 and 150 distinct thresholds), so
    // feature 0 needs extra slots; leaves are distinct so any wrong branch changes the sum.
    // Missing values go left on every third stump, right on the others, in every slot.
    let mut trees = Vec::new();
    for i in 0..300 {
        for (feature, t) in [(0, f64::from(i) * 0.37 - 7.0), (1, f64::from(i % 150) * 1.5)] {
            let missing_left = i % 3 == 0;
            trees.push(TreeSpec {
                class: i as usize % 2,
                nodes: vec![NodeSpec { feature, test: SplitTest::Threshold(t), left: -1, right: !1, missing_left }],
                leaves: vec![f64::from(i), -f64::from(i) * 0.5],
            });
        }
    }
    for i in 0..400 {
        let t = f64::from(i) * 0.1 + 0.05;
        trees.push(TreeSpec {
            class: 0,
            nodes: vec![NodeSpec {
                feature: 0,
                test: SplitTest::Threshold(t),
                left: -1,
                right: !1,
                missing_left: true,
            }],
            leaves: vec![0.25, -0.125],
        });
    }
    let spec = spec(trees);
    let engines = both(&spec);
    assert_eq!(engines.iter().map(Engine::n_slots).collect::<Vec<_>>(), [12 + 3, 3 + 1], "700 and 150 thresholds");
    let mut thresholds: Vec<f64> = spec
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .filter_map(|n| match n.test {
            SplitTest::Threshold(t) => Some(t),
            SplitTest::Categories(_) => None,
        })
        .collect();
    thresholds.extend([-100.0, 1e9, f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
    for (k, &t) in thresholds.iter().enumerate() {
        for x in [t, t.next_up(), t.next_down()] {
            let other = if k % 5 == 0 { f64::NAN } else { thresholds[(k * 7) % thresholds.len()] };
            let row = [x, other];
            let mut expected = [0.0; 2];
            for tree in &spec.trees {
                expected[tree.class] += walk(tree, &row);
            }
            for engine in &engines {
                let mut got = [0.0; 2];
                engine.raw_scores(&row, &mut got);
                assert!((got[0] - expected[0]).abs() < 1e-9 && (got[1] - expected[1]).abs() < 1e-9, "{row:?}");
            }
        }
    }
    // Exactly a run of thresholds (62 narrow, 254 wide) fills one slot; the next opens another.
    let runs = [(NARROW.run, 2, true), (NARROW.run + 1, 3, true), (WIDE.run, 2, false), (WIDE.run + 1, 3, false)];
    for (n, slots, narrow) in runs {
        let n = n as i32;
        let trees = stumps(n);
        let engines = both(&self::spec(trees));
        let engine = &engines[usize::from(!narrow)];
        assert_eq!(engine.n_slots(), slots, "{n} thresholds");
        let mut s = [0.0; 2];
        engine.raw_scores(&[f64::from(n) + 1.0, 0.0], &mut s);
        assert_eq!(s[0], f64::from(n), "above every threshold: every stump goes right");
        engine.raw_scores(&[f64::NAN, 0.0], &mut s);
        assert_eq!(s[0], f64::from(n / 2), "NaN goes right on the odd stumps");
    }
}

/// One categorical stump on feature 0 sending `codes` left (leaf 1.0), the rest right (2.0).
fn category_stump(codes: Vec<u32>) -> EnsembleSpec {
    let node = NodeSpec { feature: 0, test: SplitTest::Categories(codes), left: -1, right: !1, missing_left: true };
    spec(vec![TreeSpec { class: 1, nodes: vec![node], leaves: vec![1.0, 2.0] }])
}

#[test]
fn narrow_bins_unless_a_split_lists_a_code_from_62_to_254() {
    let codes = [-3.0, 0.0, 1.0, 60.0, 61.0, 62.0, 63.0, 100.0, 253.0, 254.0, 255.0, 300.0, 1e300, f64::NAN];
    for (listed, narrow_expected) in [
        (vec![1, 61, 255], true),
        (vec![0, 61], true),
        (vec![62], false),
        (vec![1, 100], false),
        (vec![254, 255], false),
    ] {
        let spec = category_stump(listed.clone());
        let engine = Engine::compile(&spec).expect("compiles");
        assert_eq!(narrow(&engine), narrow_expected, "{listed:?}");
        let engines = both(&spec);
        assert_eq!(engines.len(), if narrow_expected { 2 } else { 1 }, "{listed:?}");
        for engine in engines.iter().chain([&engine]) {
            for x in codes {
                assert_eq!(raw(engine, [x, 0.0]), walk(&spec.trees[0], &[x, 0.0]), "{listed:?}: code {x}");
            }
        }
    }
}

#[test]
fn narrow_slots_past_256_fall_back_to_wide() {
    // 15,811 thresholds need 256 runs of 62 (257 slots with feature 1's) but 63 of 254.
    let n = 255 * NARROW.run as i32 + 1;
    let trees = stumps(n);
    let spec = spec(trees);
    let engine = Engine::compile(&spec).expect("compiles wide");
    assert!(!narrow(&engine));
    assert_eq!(engine.n_slots(), 64);
    let mut s = [0.0; 2];
    for (x, right) in [(100.5, 101), (-1.0, 0), (1e9, n), (f64::NAN, n / 2)] {
        engine.raw_scores(&[x, 0.0], &mut s);
        assert_eq!(s[0], f64::from(right), "{x}");
    }
}

#[test]
fn the_default_model_has_narrow_bins() {
    let artifact = crate::artifact::Artifact::embedded_default().expect("default model");
    assert!(narrow(&artifact.engine), "the default model's splits fit narrow bins: the faster walk");
}

#[test]
fn up_to_256_features_are_supported() {
    let tree = |feature| TreeSpec {
        class: 1,
        nodes: vec![NodeSpec { feature, test: SplitTest::Threshold(0.5), left: -1, right: !1, missing_left: true }],
        leaves: vec![0.0, 1.0],
    };
    let wide = EnsembleSpec { n_features: MAX_FEATURES, ..spec(vec![tree(0), tree(200), tree(MAX_FEATURES - 1)]) };
    let engine = Engine::compile(&wide).expect("256 features compile");
    let mut row = vec![0.0; MAX_FEATURES];
    row[200] = 1.0;
    row[MAX_FEATURES - 1] = 1.0;
    let mut s = [0.0; 2];
    engine.raw_scores(&row, &mut s);
    assert_eq!(s[1], 2.0);
    let too_wide = EnsembleSpec { n_features: MAX_FEATURES + 1, ..wide };
    assert!(matches!(Engine::compile(&too_wide), Err(EngineError::Ensemble(_))));
}

#[test]
fn too_many_slots_are_refused_clearly() {
    // 255 full slots of feature 0 and feature 1's slot: 257 slots.
    let err = Engine::compile(&spec(stumps(255 * WIDE.run as i32 + 1))).expect_err("too many thresholds");
    assert!(err.to_string().contains("byte slots"), "{err}");
}

/// `n` stumps on feature 0 at thresholds `0..n`, leaves 0 and 1, missing values left on the even
/// ones.
fn stumps(n: i32) -> Vec<TreeSpec> {
    (0..n)
        .map(|i| TreeSpec {
            class: 0,
            nodes: vec![NodeSpec {
                feature: 0,
                test: SplitTest::Threshold(f64::from(i)),
                left: -1,
                right: !1,
                missing_left: i % 2 == 0,
            }],
            leaves: vec![0.0, 1.0],
        })
        .collect()
}
