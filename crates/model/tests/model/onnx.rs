//! Imported ONNX models (`tests/fixtures/onnx`, made by `make_fixture.py` with skl2onnx and
//! onnxruntime) score like onnxruntime, and what cannot be imported is refused clearly.

use std::fs;
use std::path::{Path, PathBuf};

use retail_model::CLASSES;
use retail_model::artifact::{Artifact, ArtifactError};
use retail_model::engine::{Engine, Output};
use retail_model::features::{BasketRecord, FeaturePipeline};
use retail_model::import::{ImportConfig, ImportError, import_onnx};
use retail_model::onnx::{self, InputMapping, OnnxError};
use retail_model::progress::Silent;
use retail_model::synth::{GenConfig, generate};
use serde_json::Value;

/// Largest difference to onnxruntime's probabilities accepted.
const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn mapping() -> InputMapping {
    read_mapping("inputs.json")
}

fn read_mapping(file: &str) -> InputMapping {
    serde_json::from_slice(&fs::read(fixtures().join(file)).expect("mapping file")).expect("mapping")
}

/// The input mapping of a fixture: XGBoost and LightGBM were trained on the integer labels
/// 0/1/2, which `inputs_int_labels.json` names.
fn mapping_of(model: &str) -> InputMapping {
    read_mapping(if matches!(model, "xgb" | "lgbm") { "inputs_int_labels.json" } else { "inputs.json" })
}

fn golden() -> Value {
    serde_json::from_slice(&fs::read(fixtures().join("golden.json")).expect("golden.json")).expect("json")
}

/// A golden record as the pipeline's flat record.
pub fn record(r: &Value) -> BasketRecord {
    let s = |k: &str| r[k].as_str().expect("string field").to_owned();
    BasketRecord {
        spend: r["SPEND"].as_f64().expect("SPEND"),
        quantity: r["QUANTITY"].as_f64().expect("QUANTITY"),
        prod_code_20: s("PROD_CODE_20"),
        prod_code_30: s("PROD_CODE_30"),
        basket_size: s("BASKET_SIZE"),
        basket_type: s("BASKET_TYPE"),
        store_region: s("STORE_REGION"),
        store_format: s("STORE_FORMAT"),
    }
}

fn import(file: &str) -> Result<onnx::Imported, OnnxError> {
    import_with(file, &mapping())
}

fn import_with(file: &str, mapping: &InputMapping) -> Result<onnx::Imported, OnnxError> {
    let schema = onnx::input_schema(mapping).expect("schema");
    onnx::import(&fs::read(fixtures().join(file)).expect("onnx"), mapping, &schema, &CLASSES)
}

/// Worst |Δp| between the engine (through the pipeline) and onnxruntime on every golden record.
fn worst_difference(model: &str, pipeline: &FeaturePipeline, engine: &Engine) -> f64 {
    let golden = golden();
    let records = golden["records"].as_array().expect("records");
    let expected = golden["probabilities"][model].as_array().expect("probabilities");
    assert!(records.len() >= 300 && records.len() == expected.len());
    let mut worst: f64 = 0.0;
    for (r, p) in records.iter().zip(expected) {
        let encoded = pipeline.encode(&record(r)).expect("valid record");
        let mut got = [0.0; 3];
        engine.predict_proba(&encoded.features, &mut got);
        for (g, e) in got.iter().zip(p.as_array().expect("row")) {
            worst = worst.max((g - e.as_f64().expect("number")).abs());
        }
    }
    worst
}

#[test]
fn imported_sklearn_xgboost_and_lightgbm_models_match_onnxruntime_within_1e_5() {
    let pipeline = FeaturePipeline::new(onnx::input_schema(&mapping()).expect("schema")).expect("pipeline");
    // sklearn GBDT: 100 rounds x 3 classes; XGBoost / LightGBM: 40 rounds x 3 classes.
    for (model, output, trees) in [
        ("gbdt", Output::Softmax, 300),
        ("rf", Output::Identity, 25),
        ("xgb", Output::Softmax, 120),
        ("lgbm", Output::Softmax, 120),
    ] {
        let imported = import_with(&format!("{model}.onnx"), &mapping_of(model)).expect("imports");
        assert_eq!(imported.spec.output, output, "{model}");
        assert_eq!(imported.summary.trees, trees, "{model}");
        assert_eq!(imported.summary.precision, "float");
        let engine = Engine::compile(&imported.spec).expect("compiles");
        let worst = worst_difference(model, &pipeline, &engine);
        assert!(worst <= TOLERANCE, "{model}: max |Δp| {worst:e} against onnxruntime");
        eprintln!(
            "{model}: {} engine trees, depth {}, {} byte slots, max |Δp| {worst:e}",
            engine.n_trees(),
            engine.depth(),
            engine.n_slots()
        );
    }
}

#[test]
fn goldens_cover_thresholds_and_unseen_categories() {
    // The goldens must exercise exact-threshold rounding and unseen codes, or the 1e-5 test
    // above would prove less than it claims.
    let mapping = mapping();
    let pipeline = FeaturePipeline::new(onnx::input_schema(&mapping).expect("schema")).expect("pipeline");
    let golden = golden();
    let records = golden["records"].as_array().expect("records");
    let unseen = records.iter().filter(|r| !pipeline.encode(&record(r)).expect("valid").unseen.is_empty()).count();
    assert!(unseen >= 20, "{unseen} records with unseen categories");
    let imported = import("gbdt.onnx").expect("imports");
    let spend_thresholds: Vec<f64> = imported
        .spec
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .filter_map(|n| match n.test {
            retail_model::engine::SplitTest::Threshold(t) if n.feature == 0 => Some(t),
            _ => None,
        })
        .collect();
    // A translated bound sits half a float32 step above the ONNX threshold; records on the
    // threshold itself are within that half step.
    let near = records
        .iter()
        .filter(|r| {
            let x = r["SPEND"].as_f64().expect("SPEND");
            spend_thresholds.iter().any(|t| (t - x).abs() <= t.abs() * 2f64.powi(-23))
        })
        .count();
    assert!(near >= 50, "{near} records on or next to a SPEND threshold");
}

#[test]
fn graphs_that_are_not_tree_ensembles_are_refused_with_the_reason() {
    let err = import("linear.onnx").expect_err("linear");
    assert!(matches!(err, OnnxError::Graph(_)) && err.to_string().contains("LinearClassifier"), "{err}");
    let err = import("zipmap.onnx").expect_err("zipmap");
    assert!(err.to_string().contains("ZipMap") && err.to_string().contains("'zipmap': False"), "{err}");
    let err = import("other_classes.onnx").expect_err("classes");
    assert!(matches!(&err, OnnxError::Classes { found, .. } if found == &["high", "low", "mid"]), "{err}");
    let mapping = mapping();
    let schema = onnx::input_schema(&mapping).expect("schema");
    let err = onnx::import(b"\x08\x07 certainly not protobuf", &mapping, &schema, &CLASSES).expect_err("garbage");
    assert!(matches!(err, OnnxError::Decode(_)), "{err}");
}

#[test]
fn integer_class_labels_need_their_names_in_the_mapping() {
    // XGBoost / LightGBM exports carry the labels 0/1/2; without names they are refused.
    let err = import("xgb.onnx").expect_err("unnamed integer labels");
    assert!(err.to_string().contains(r#""classes": ["LA", "MM", "UM"]"#), "{err}");
    let err = import_with("gbdt.onnx", &mapping_of("xgb")).expect_err("names for string labels");
    assert!(matches!(&err, OnnxError::Mapping(m) if m.contains("labels are strings")), "{err}");
    let mut named = mapping_of("lgbm");
    named.classes = Some(vec!["LA".into(), "MM".into()]);
    let err = import_with("lgbm.onnx", &named).expect_err("two names");
    assert!(err.to_string().contains("`classes` names 2 labels, the model has 3"), "{err}");
    named.classes = Some(vec!["LA".into(), "MM".into(), "XX".into()]);
    let err = import_with("lgbm.onnx", &named).expect_err("unknown name");
    assert!(matches!(&err, OnnxError::Classes { found, .. } if found == &["LA", "MM", "XX"]), "{err}");
    // The names decide which probability is which: swapping two moves them, far beyond 1e-5.
    named.classes = Some(vec!["MM".into(), "LA".into(), "UM".into()]);
    let engine = Engine::compile(&import_with("lgbm.onnx", &named).expect("imports").spec).expect("compiles");
    let pipeline = FeaturePipeline::new(onnx::input_schema(&named).expect("schema")).expect("pipeline");
    let worst = worst_difference("lgbm", &pipeline, &engine);
    assert!(worst > 0.01, "swapped names changed nothing: {worst:e}");
}

#[test]
fn mappings_that_do_not_fit_are_refused_naming_the_column() {
    let mut bad = mapping();
    bad.columns[4].feature = "STORE_REGON".into();
    let err = onnx::input_schema(&bad).expect_err("unknown feature");
    assert!(err.to_string().contains("column 4 (STORE_REGON): unknown feature"), "{err}");
    let mut bad = mapping();
    bad.columns.pop();
    let schema = onnx::input_schema(&bad).expect("schema");
    let onnx_bytes = fs::read(fixtures().join("gbdt.onnx")).expect("onnx");
    let err = onnx::import(&onnx_bytes, &bad, &schema, &CLASSES).expect_err("short");
    assert!(err.to_string().contains("lists 55 columns, the graph input \"X\" has 56"), "{err}");
    let mut bad = mapping();
    bad.columns[0].one_hot = Some("LONDON".into());
    assert!(onnx::input_schema(&bad).expect_err("numeric one-hot").to_string().contains("numeric feature"));
    let mut bad = mapping();
    bad.input = Some("features".into());
    let err = onnx::import(&onnx_bytes, &bad, &schema, &CLASSES).expect_err("input name");
    assert!(err.to_string().contains("names input \"features\""), "{err}");
}

fn import_config(dir: &Path, onnx_file: &str) -> ImportConfig {
    let data = dir.join("data.csv");
    if !data.exists() {
        let mut csv = Vec::new();
        generate(GenConfig { baskets: 3_000, seed: 21 }, &mut csv, None, &Silent).expect("generate");
        fs::write(&data, csv).expect("write data");
    }
    ImportConfig {
        onnx: fixtures().join(onnx_file),
        inputs: fixtures().join("inputs.json"),
        data,
        out: dir.join("artifact"),
        replace: true,
        version: None,
        created_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[test]
fn imported_artifacts_load_verified_and_refuse_a_tampered_onnx_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = import_config(tmp.path(), "gbdt.onnx");
    let manifest = import_onnx(&config, &Silent).expect("import");
    assert_eq!(manifest.format_version, 2);
    let accuracy = manifest.metrics.classification().expect("a classifier").accuracy;
    assert!(accuracy > 0.5, "accuracy {accuracy}");
    let artifact = Artifact::load(&config.out).expect("loads");
    let worst = worst_difference("gbdt", artifact.pipeline().expect("a basket model"), &artifact.engine);
    assert!(worst <= TOLERANCE, "through the artifact: {worst:e}");

    let onnx_path = config.out.join("model.onnx");
    let mut bytes = fs::read(&onnx_path).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&onnx_path, &bytes).expect("write");
    let err = Artifact::load(&config.out).expect_err("tampered");
    assert!(matches!(&err, ArtifactError::Checksum { file, .. } if file == "model.onnx"), "{err}");

    // An ONNX manifest claiming the old format version is refused (older builds could not serve it).
    import_onnx(&config, &Silent).expect("import again");
    let path = config.out.join("manifest.json");
    let text = fs::read_to_string(&path).expect("manifest");
    fs::write(&path, text.replacen("\"format_version\": 2", "\"format_version\": 1", 1)).expect("write");
    let err = Artifact::load(&config.out).expect_err("version 1");
    assert!(err.to_string().contains("needs format_version 2"), "{err}");

    let err = import_onnx(&import_config(tmp.path(), "linear.onnx"), &Silent).expect_err("linear");
    assert!(matches!(err, ImportError::Onnx { .. }) && err.to_string().contains("linear.onnx"), "{err}");
}
