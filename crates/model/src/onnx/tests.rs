//! Unit tests of the ONNX importer: float32 threshold bounds, every branch mode, ordinal and
//! one-hot columns, class order by name.

use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, TensorProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto,
};
use super::*;
use crate::engine::Engine;
use crate::features::{BasketRecord, FeaturePipeline, FeatureSpec};

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
