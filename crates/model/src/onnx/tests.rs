//! Unit tests of the ONNX importer: float32 threshold bounds, every branch mode, ordinal and
//! one-hot columns, class order by name.

use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto,
};
use super::*;
use crate::engine::Engine;
use crate::features::{BasketRecord, FeaturePipeline, FeatureSpec};
use crate::onnx::RawTask;

#[test]
fn f32_bound_is_exact_around_thresholds() {
    let mut thresholds = vec![0.0f32, -0.0, 1.0, -1.0, 0.1, 125.5, 2.5, f32::MAX, f32::MIN, f32::from_bits(1)];
    // Random bit patterns (xorshift): every exponent range, both signs, odd and even significands.
    let mut state = 0x2545_f491_u32;
    for _ in 0..5_000 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        thresholds.push(f32::from_bits(state));
    }
    thresholds.retain(|t| t.is_finite());
    for t in thresholds {
        let b = f32_leq_bound(t);
        let up = if t == f32::MAX { 2f64.powi(128) } else { f64::from(t.next_up()) };
        let mid = (f64::from(t) + up) / 2.0;
        let candidates = [
            f64::from(t),
            f64::from(t).next_up(),
            f64::from(t).next_down(),
            mid,
            mid.next_up(),
            mid.next_down(),
            b,
            b.next_up(),
            f64::from(t.next_down()),
        ];
        for x in candidates {
            assert_eq!(x <= b, (x as f32) <= t, "t = {t:e}, x = {x:e}, bound {b:e}");
        }
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { name: name.into(), ints: v.to_vec(), ..Default::default() }
}

fn floats(name: &str, v: &[f32]) -> AttributeProto {
    AttributeProto { name: name.into(), floats: v.to_vec(), ..Default::default() }
}

fn strings(name: &str, v: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        strings: v.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

/// Four stumps, one per branch mode, over [SPEND, STORE_REGION=LONDON, BASKET_SIZE ordinal];
/// labels in the order UM, LA, MM; every leaf weight a distinct power of two.
fn stumps(post_transform: &str) -> Vec<u8> {
    // (mode, column, threshold, class index in UM/LA/MM, yes weight, no weight)
    let trees = [
        ("BRANCH_LT", 0, 10.0f32, 0, 1.0f32, 2.0f32),
        ("BRANCH_GTE", 2, 1.0, 2, 4.0, 8.0),
        ("BRANCH_EQ", 1, 1.0, 1, 16.0, 32.0),
        ("BRANCH_GT", 0, 0.1, 0, 64.0, 128.0),
    ];
    let mut n = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut c = (vec![], vec![], vec![], vec![]);
    for (t, (mode, column, threshold, class, yes, no)) in trees.into_iter().enumerate() {
        let t = t as i64;
        for (id, mode, value) in [(0, mode, threshold), (1, "LEAF", 0.0), (2, "LEAF", 0.0)] {
            n.0.push(t);
            n.1.push(id);
            n.2.push(if id == 0 { column } else { 0 });
            n.3.push(mode);
            n.4.push(value);
            n.5.push(if id == 0 { 1 } else { 0 });
            n.6.push(if id == 0 { 2 } else { 0 });
        }
        for (leaf, weight) in [(1, yes), (2, no)] {
            c.0.push(t);
            c.1.push(leaf);
            c.2.push(class);
            c.3.push(weight);
        }
    }
    let mut post = AttributeProto { name: "post_transform".into(), ..Default::default() };
    post.s = post_transform.as_bytes().to_vec();
    let trees = NodeProto {
        input: vec!["X".into()],
        output: vec!["label".into(), "probabilities".into()],
        name: "trees".into(),
        op_type: "TreeEnsembleClassifier".into(),
        domain: ML_DOMAIN.into(),
        attribute: vec![
            ints("nodes_treeids", &n.0),
            ints("nodes_nodeids", &n.1),
            ints("nodes_featureids", &n.2),
            strings("nodes_modes", &n.3),
            floats("nodes_values", &n.4),
            ints("nodes_truenodeids", &n.5),
            ints("nodes_falsenodeids", &n.6),
            ints("class_treeids", &c.0),
            ints("class_nodeids", &c.1),
            ints("class_ids", &c.2),
            floats("class_weights", &c.3),
            strings("classlabels_strings", &["UM", "LA", "MM"]),
            floats("base_values", &[0.5, 0.0, 0.0]),
            post,
        ],
    };
    let value = |name: &str, dims: &[i64]| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: proto::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| Dimension { dim_value: d, dim_param: String::new() }).collect(),
                }),
            }),
        }),
    };
    let model = ModelProto {
        ir_version: 8,
        producer_name: "test".into(),
        graph: Some(GraphProto {
            node: vec![trees],
            name: "g".into(),
            input: vec![value("X", &[0, 3])],
            output: vec![value("probabilities", &[0, 3])],
            ..Default::default()
        }),
        ..Default::default()
    };
    model.encode_to_vec()
}

fn stump_mapping() -> InputMapping {
    serde_json::from_str(
        r#"{"columns":[{"feature":"SPEND"},{"feature":"STORE_REGION","one_hot":"london"},
            {"feature":"BASKET_SIZE","ordinal":["S","M","L"],"unseen":-1}]}"#,
    )
    .expect("mapping")
}

fn record(spend: f64, region: &str, size: &str) -> BasketRecord<String> {
    BasketRecord {
        spend,
        quantity: 1.0,
        prod_code_20: "FOOD".into(),
        prod_code_30: "FRESH".into(),
        basket_size: size.into(),
        basket_type: "MIXED".into(),
        store_region: region.into(),
        store_format: "LS".into(),
    }
}

#[test]
fn branch_modes_columns_and_class_order_translate_exactly() {
    let mapping = stump_mapping();
    let schema = input_schema(&mapping).expect("schema");
    let pipeline = FeaturePipeline::new(schema.clone()).expect("pipeline");
    let imported = import(&stumps("NONE"), &mapping, &schema, &crate::CLASSES).expect("imports");
    assert_eq!(imported.spec.output, Output::Identity);
    let engine = Engine::compile(&imported.spec).expect("compiles");
    // Expected sums in API order LA, MM, UM (UM has base 0.5); the stumps add UM 1|2, MM 4|8,
    // LA 16|32, UM 64|128 (yes|no).
    let cases = [
        (record(9.99, "LONDON", "S"), [16.0, 8.0, 65.5]),
        // 10 is not < 10; unseen region: indicator 0, not == 1; unseen size: -1, not >= 1.
        (record(10.0, "MARS", "XXL"), [32.0, 8.0, 66.5]),
        // 0.1 rounds to the float32 threshold 0.1 itself: not > 0.1. Case of the value is ignored.
        (record(0.1, "London", "L"), [16.0, 4.0, 129.5]),
        // Below 10 as f64, but float32 rounds it to 10.0: not < 10 (as onnxruntime sees it).
        (record(9.999_999_9, "LONDON", "M"), [16.0, 4.0, 66.5]),
        // Above 0.1 as f64, but within half a float32 step of 0.1f32: rounds to it, not > 0.1.
        (record(0.100_000_003, "LONDON", "M"), [16.0, 4.0, 129.5]),
        // Past the midpoint: rounds to the next float32, which is > 0.1.
        (record(0.100_000_006, "LONDON", "M"), [16.0, 4.0, 65.5]),
    ];
    for (r, expected) in cases {
        let mut p = [0.0; 3];
        engine.predict_proba(&pipeline.encode(&r).expect("valid").features, &mut p);
        assert_eq!(p, expected, "{r:?}");
    }
    let softmax = import(&stumps("SOFTMAX"), &mapping, &schema, &crate::CLASSES).expect("imports");
    assert_eq!(softmax.spec.output, Output::Softmax);
    assert_eq!(softmax.spec.init_scores, [0.0, 0.0, 0.5]);
    let err = import(&stumps("LOGISTIC"), &mapping, &schema, &crate::CLASSES).expect_err("logistic");
    assert!(err.to_string().contains("post_transform LOGISTIC"), "{err}");
}

#[test]
fn mapping_schema_has_canonical_sorted_vocabularies() {
    let schema = input_schema(&stump_mapping()).expect("schema");
    let vocabulary = |name: &str| match schema.features.iter().find(|f| f.name() == name) {
        Some(FeatureSpec::Categorical { vocabulary, .. }) => vocabulary.clone(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(vocabulary("STORE_REGION"), ["LONDON"]);
    assert_eq!(vocabulary("BASKET_SIZE"), ["L", "M", "S"]);
    assert!(vocabulary("STORE_FORMAT").is_empty(), "unused features have no vocabulary");
    let err = input_schema(
        &serde_json::from_str(r#"{"columns":[{"feature":"BASKET_SIZE","ordinal":["S","M"]}]}"#).expect("json"),
    )
    .expect_err("no unseen");
    assert!(err.to_string().contains("needs `unseen`"), "{err}");
}

#[test]
fn only_a_mul_by_the_constant_one_is_accepted_after_the_trees() {
    // onnxmltools' LightGBM converter ends in `Mul(probabilities, one)`; any other factor changes
    // the probabilities and is refused.
    let mapping = stump_mapping();
    let schema = input_schema(&mapping).expect("schema");
    let with_mul = |factor: f32| {
        let mut model = ModelProto::decode(stumps("NONE").as_slice()).expect("decode");
        let graph = model.graph.as_mut().expect("graph");
        graph.node[0].output[1] = "raw".into();
        graph.node.push(NodeProto {
            input: vec!["raw".into(), "factor".into()],
            output: vec!["probabilities".into()],
            name: "scale".into(),
            op_type: "Mul".into(),
            ..Default::default()
        });
        graph.initializer.push(TensorProto {
            dims: vec![1],
            data_type: proto::FLOAT,
            float_data: vec![factor],
            name: "factor".into(),
            ..Default::default()
        });
        model.encode_to_vec()
    };
    let plain = import(&stumps("NONE"), &mapping, &schema, &crate::CLASSES).expect("imports");
    let by_one = import(&with_mul(1.0), &mapping, &schema, &crate::CLASSES).expect("a Mul by 1 imports");
    assert_eq!(by_one.spec, plain.spec);
    let err = import(&with_mul(2.0), &mapping, &schema, &crate::CLASSES).expect_err("a Mul by 2");
    assert!(err.to_string().contains("operator Mul (node \"scale\") is not supported"), "{err}");
}

#[test]
fn a_file_that_would_decode_too_large_is_refused_before_decoding() {
    // 4 MB of empty nodes (2 bytes each on the wire) would decode to 2,000,000 NodeProtos.
    let nodes = 2_000_000usize;
    let mut graph = Vec::with_capacity(2 * nodes);
    for _ in 0..nodes {
        graph.extend([0x0a, 0x00]);
    }
    let model = ModelProto { graph: None, ..Default::default() };
    let mut bytes = model.encode_to_vec();
    bytes.push(0x3a);
    prost::encoding::encode_varint(graph.len() as u64, &mut bytes);
    bytes.extend(graph);
    let mapping = stump_mapping();
    let schema = input_schema(&mapping).expect("schema");
    let err = import(&bytes, &mapping, &schema, &crate::CLASSES).expect_err("too large");
    assert!(matches!(err, OnnxError::TooLarge { bytes } if bytes > MAX_DECODED_BYTES), "{err}");
    assert!(err.to_string().contains(&MAX_DECODED_BYTES.to_string()), "{err}");
}

/// A stump ensemble over a 2-column raw vector: per tree (mode, column, threshold, tracks
/// missing to true, yes weight, no weight), every weight on output 0; `op` is
/// `TreeEnsembleRegressor` (`target_*`) or `TreeEnsembleClassifier` (`class_*`), `extra` its
/// other attributes.
fn raw_stumps(op: &str, trees: &[(&str, i64, f32, i64, f32, f32)], extra: Vec<AttributeProto>) -> Vec<u8> {
    let prefix = if op == "TreeEnsembleRegressor" { "target" } else { "class" };
    // Node attributes: tree, node, feature, true, false and tracks ids; modes; values.
    let (mut n, mut modes, mut values): ([Vec<i64>; 6], Vec<&str>, Vec<f32>) = Default::default();
    let (mut leaves, mut weights): ([Vec<i64>; 2], Vec<f32>) = Default::default();
    for (t, &(mode, column, threshold, tracks, yes, no)) in trees.iter().enumerate() {
        let t = t as i64;
        n[0].extend([t, t, t]);
        n[1].extend([0, 1, 2]);
        n[2].extend([column, 0, 0]);
        n[3].extend([1, 0, 0]);
        n[4].extend([2, 0, 0]);
        n[5].extend([tracks, 0, 0]);
        modes.extend([mode, "LEAF", "LEAF"]);
        values.extend([threshold, 0.0, 0.0]);
        leaves[0].extend([t, t]);
        leaves[1].extend([1, 2]);
        weights.extend([yes, no]);
    }
    let mut attribute = vec![
        ints("nodes_treeids", &n[0]),
        ints("nodes_nodeids", &n[1]),
        ints("nodes_featureids", &n[2]),
        strings("nodes_modes", &modes),
        floats("nodes_values", &values),
        ints("nodes_truenodeids", &n[3]),
        ints("nodes_falsenodeids", &n[4]),
        ints("nodes_missing_value_tracks_true", &n[5]),
        ints(&format!("{prefix}_treeids"), &leaves[0]),
        ints(&format!("{prefix}_nodeids"), &leaves[1]),
        ints(&format!("{prefix}_ids"), &vec![0; weights.len()]),
        floats(&format!("{prefix}_weights"), &weights),
    ];
    attribute.extend(extra);
    let outputs: Vec<String> =
        if prefix == "target" { vec!["variable".into()] } else { vec!["label".into(), "probabilities".into()] };
    let value = |name: &str| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: proto::DOUBLE,
                shape: Some(TensorShapeProto {
                    dim: [0, 2].iter().map(|&d| Dimension { dim_value: d, dim_param: String::new() }).collect(),
                }),
            }),
        }),
    };
    let node = NodeProto {
        input: vec!["X".into()],
        output: outputs.clone(),
        op_type: op.into(),
        domain: ML_DOMAIN.into(),
        attribute,
        ..Default::default()
    };
    let graph = GraphProto {
        node: vec![node],
        input: vec![value("X")],
        output: vec![value(&outputs[outputs.len() - 1])],
        ..Default::default()
    };
    ModelProto { ir_version: 8, graph: Some(graph), ..Default::default() }.encode_to_vec()
}

fn string_attr(name: &str, value: &str) -> AttributeProto {
    AttributeProto { name: name.into(), s: value.as_bytes().to_vec(), ..Default::default() }
}

#[test]
fn raw_regressors_sum_or_average_and_route_missing_values_as_onnxruntime() {
    // NaN: no branch (not tracked); yes branch of a BRANCH_GT (swapped: right); yes branch (left).
    let trees = [
        ("BRANCH_LEQ", 0, 1.0, 0, 1.0, 2.0),
        ("BRANCH_GT", 1, 0.0, 1, 4.0, 8.0),
        ("BRANCH_LEQ", 0, 5.0, 1, 16.0, 32.0),
    ];
    let regressor = |extra: Vec<AttributeProto>| raw_stumps("TreeEnsembleRegressor", &trees, extra);
    let sum = import_raw(&regressor(vec![floats("base_values", &[0.5])]), Some(2)).expect("imports");
    assert_eq!((sum.task.clone(), sum.n_features, sum.input_name.as_str()), (RawTask::Regression, 2, "X"));
    let lefts: Vec<bool> = sum.spec.trees.iter().map(|t| t.nodes[0].missing_left).collect();
    assert_eq!(lefts, [false, false, true]);
    let engine = Engine::compile(&sum.spec).expect("compiles");
    let cases = [([f64::NAN, f64::NAN], 22.5), ([0.0, 1.0], 21.5), ([2.0, -1.0], 26.5), ([1.0, f64::NAN], 21.5)];
    for (row, want) in cases {
        assert_eq!(engine.predict_value(&row), want, "{row:?}");
    }
    let average = regressor(vec![floats("base_values", &[0.5]), string_attr("aggregate_function", "AVERAGE")]);
    let engine = Engine::compile(&import_raw(&average, None).expect("imports").spec).expect("compiles");
    for (row, want) in cases {
        assert!((engine.predict_value(&row) - ((want - 0.5) / 3.0 + 0.5)).abs() < 1e-12, "{row:?}");
    }
    let err = import_raw(&regressor(vec![string_attr("aggregate_function", "MIN")]), None).expect_err("MIN");
    assert!(err.to_string().contains("aggregate_function MIN is not supported"), "{err}");
    let two = regressor(vec![AttributeProto { name: "n_targets".into(), i: 2, ..Default::default() }]);
    assert!(import_raw(&two, None).expect_err("two targets").to_string().contains("n_targets = 2"));
}

#[test]
fn raw_binary_classifiers_follow_onnxruntimes_one_score_rules() {
    let mixed = [("BRANCH_LEQ", 0, 1.0, 0, 1.0, -2.0), ("BRANCH_LEQ", 1, 0.0, 1, 0.5, -0.25)];
    let positive = [("BRANCH_LEQ", 0, 1.0, 0, 0.25, 0.5), ("BRANCH_LEQ", 1, 0.0, 1, 0.125, 0.0)];
    let classifier = |trees: &[(&str, i64, f32, i64, f32, f32)], post: &str, base: &[f32]| {
        let extra =
            vec![ints("classlabels_int64s", &[0, 1]), string_attr("post_transform", post), floats("base_values", base)];
        import_raw(&raw_stumps("TreeEnsembleClassifier", trees, extra), None)
    };
    let sigmoid = |s: f64| 1.0 / (1.0 + (-s).exp());
    // Rows and each model's score s (base 0.25 included where given).
    let rows = [[0.0, f64::NAN], [2.0, 1.0], [f64::NAN, -1.0]];
    let mixed_s = [1.75, -2.0, -1.25];
    let positive_s = [0.375, 0.5, 0.625];
    for (trees, post, base) in
        [(&mixed, "LOGISTIC", true), (&mixed, "NONE", true), (&positive, "LOGISTIC", false), (&positive, "NONE", false)]
    {
        let imported = classifier(trees, post, if base { &[0.25] } else { &[] }).expect("imports");
        assert_eq!(imported.task, RawTask::Classification { classes: vec!["0".into(), "1".into()] });
        let engine = Engine::compile(&imported.spec).expect("compiles");
        let scores = if base { mixed_s } else { positive_s };
        for (row, s) in rows.iter().zip(scores) {
            let mut p = [0.0; 2];
            engine.predict_proba(row, &mut p);
            // Non-negative weights: (1 - s, s) whatever the transform; else LOGISTIC: sigmoids; else (-s, s).
            let want = match (base, post) {
                (false, _) => [1.0 - s, s],
                (true, "LOGISTIC") => [sigmoid(-s), sigmoid(s)],
                (true, _) => [-s, s],
            };
            assert!(
                (p[0] - want[0]).abs() < 1e-12 && (p[1] - want[1]).abs() < 1e-12,
                "{post} {row:?}: {p:?} vs {want:?}"
            );
        }
    }
    let err = classifier(&mixed, "PROBIT", &[]).expect_err("probit");
    assert!(err.to_string().contains("PROBIT"), "{err}");
    let three = vec![ints("classlabels_int64s", &[0, 1, 2]), string_attr("post_transform", "LOGISTIC")];
    let err = import_raw(&raw_stumps("TreeEnsembleClassifier", &mixed, three), None).expect_err("logistic");
    assert!(err.to_string().contains("post_transform LOGISTIC is not supported"), "{err}");
}
