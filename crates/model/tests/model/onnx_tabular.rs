//! Raw-vector ONNX imports (`onnx::import_raw`) of models trained on a generic numeric table with
//! missing values (`tests/fixtures/onnx/make_tabular_fixture.py`: LightGBM binary classifier and
//! regressor, scikit-learn random forest regressor) score like onnxruntime, NaN rows included.

use std::fs;
use std::path::{Path, PathBuf};

use retail_model::engine::{Engine, EnsembleSpec, Output, SplitTest};
use retail_model::onnx::{self, OnnxError, RawTask};
use serde_json::Value;

/// Largest difference to onnxruntime's outputs accepted.
const TOLERANCE: f64 = 1e-5;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx")
}

fn golden() -> Value {
    serde_json::from_slice(&fs::read(fixtures().join("tab_golden.json")).expect("tab_golden.json")).expect("json")
}

/// The golden rows, `null` as NaN.
fn rows(golden: &Value) -> Vec<Vec<f64>> {
    let rows = golden["rows"].as_array().expect("rows");
    rows.iter().map(|r| r.as_array().expect("row").iter().map(|v| v.as_f64().unwrap_or(f64::NAN)).collect()).collect()
}

fn expected(golden: &Value, model: &str) -> Vec<Vec<f64>> {
    let outputs = golden["models"][model]["outputs"].as_array().expect("outputs");
    outputs.iter().map(|r| r.as_array().expect("row").iter().map(|v| v.as_f64().expect("number")).collect()).collect()
}

fn import(model: &str, hint: Option<usize>) -> Result<onnx::RawImport, OnnxError> {
    let file = golden()["models"][model]["file"].as_str().expect("file").to_owned();
    onnx::import_raw(&fs::read(fixtures().join(file)).expect("fixture"), hint)
}

/// The engine's outputs (probabilities, or the one value) of every row.
fn predict(spec: &EnsembleSpec, rows: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let engine = Engine::compile(spec).expect("compiles");
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let mut batch = vec![0.0; rows.len() * engine.n_classes()];
    engine.predict_batch(&flat, &mut batch);
    rows.iter()
        .zip(batch.chunks(engine.n_classes()))
        .map(|(row, b)| {
            let mut p = vec![0.0; engine.n_classes()];
            engine.predict_proba(row, &mut p);
            assert_eq!(p, b, "batch equals single rows on {row:?}");
            p
        })
        .collect()
}

fn max_error(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(g, w)| (g - w).abs()).fold(0.0, f64::max)
}

const MODELS: [&str; 3] = ["lgbm_binary", "lgbm_reg", "rf_reg"];

#[test]
fn raw_imports_match_onnxruntime_within_1e_5_on_every_golden_row() {
    let golden = golden();
    let rows = rows(&golden);
    let nan_rows = rows.iter().filter(|r| r.iter().any(|v| v.is_nan())).count();
    assert!(nan_rows >= 100, "the goldens exercise missing values: {nan_rows} NaN rows");
    for model in MODELS {
        let imported = import(model, Some(8)).unwrap_or_else(|e| panic!("{model}: {e}"));
        assert_eq!((imported.n_features, imported.input_name.as_str()), (8, "X"), "{model}");
        match (&imported.task, model) {
            (RawTask::Classification { classes }, "lgbm_binary") => {
                assert_eq!(classes, &["0", "1"]);
                assert_eq!(imported.spec.output, Output::Softmax, "LOGISTIC is the softmax of (0, s)");
            }
            (RawTask::Regression, "lgbm_reg" | "rf_reg") => assert_eq!(imported.spec.output, Output::Identity),
            (task, _) => panic!("{model}: {task:?}"),
        }
        let want = expected(&golden, model);
        let got = predict(&imported.spec, &rows);
        for (r, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(max_error(g, w) <= TOLERANCE, "{model} row {r} {:?}: {g:?} vs onnxruntime {w:?}", rows[r]);
        }
    }
}

/// The spec with every threshold node's missing value sent the other way (`flip`) or left.
fn rerouted(spec: &EnsembleSpec, flip: bool) -> EnsembleSpec {
    let mut spec = spec.clone();
    for node in spec.trees.iter_mut().flat_map(|t| &mut t.nodes) {
        if matches!(node.test, SplitTest::Threshold(_)) {
            node.missing_left = !flip || !node.missing_left;
        }
    }
    spec
}

#[test]
fn the_goldens_fail_if_missing_values_are_routed_otherwise() {
    let golden = golden();
    let rows = rows(&golden);
    for model in MODELS {
        let spec = import(model, None).expect("imports").spec;
        let lefts: Vec<bool> = spec.trees.iter().flat_map(|t| &t.nodes).map(|n| n.missing_left).collect();
        if model.starts_with("lgbm") {
            assert!(lefts.contains(&true) && lefts.contains(&false), "{model}: learned default directions both ways");
        }
        let want = expected(&golden, model);
        for flip in [true, false] {
            let got = predict(&rerouted(&spec, flip), &rows);
            let wrong: Vec<usize> = (0..rows.len()).filter(|&r| max_error(&got[r], &want[r]) > TOLERANCE).collect();
            assert!(wrong.len() >= 10, "{model} (flip {flip}): only {} rows notice the routing", wrong.len());
            assert!(wrong.iter().all(|&r| rows[r].iter().any(|v| v.is_nan())), "{model}: only NaN rows change");
        }
    }
}

#[test]
fn raw_import_widths_and_refusals() {
    let err = import("lgbm_reg", Some(9)).expect_err("wrong width");
    assert!(matches!(&err, OnnxError::Graph(m) if m.contains("has 8 columns, 9 were expected")), "{err}");
    // The basket import takes classifiers only, and names what it found.
    let bytes = fs::read(fixtures().join("tab_lgbm_reg.onnx")).expect("fixture");
    let mapping: onnx::InputMapping =
        serde_json::from_slice(&fs::read(fixtures().join("inputs.json")).expect("mapping")).expect("mapping");
    let schema = onnx::input_schema(&mapping).expect("schema");
    let err = onnx::import(&bytes, &mapping, &schema, &retail_model::CLASSES).expect_err("a regressor");
    assert!(err.to_string().contains("TreeEnsembleRegressor"), "{err}");
    for (file, needle) in [("zipmap.onnx", "ZipMap"), ("linear.onnx", "LinearClassifier")] {
        let err = onnx::import_raw(&fs::read(fixtures().join(file)).expect("fixture"), None).expect_err(file);
        assert!(matches!(&err, OnnxError::Graph(m) if m.contains(needle)), "{file}: {err}");
    }
    // The basket fixtures import raw too: their labels, their width.
    let raw = onnx::import_raw(&fs::read(fixtures().join("gbdt.onnx")).expect("fixture"), None).expect("imports");
    assert_eq!(raw.task, RawTask::Classification { classes: vec!["LA".into(), "MM".into(), "UM".into()] });
    assert_eq!(raw.n_features, mapping.columns.len());
    assert!(Engine::compile(&raw.spec).is_ok());
}

/// `import-onnx --label` in the library: the golden rows as a labelled CSV (label: the class
/// onnxruntime predicts, or its value), imported into a tabular artifact that loads back and
/// scores every row, NaN included, as onnxruntime did — through the schema's encode function,
/// the one the server uses.
#[test]
fn a_raw_onnx_model_imports_into_a_tabular_artifact_that_serves_like_onnxruntime() {
    use retail_model::artifact::{Artifact, ModelKind, ModelMetrics};
    use retail_model::tabular::Value as Cell;
    use retail_model::tabular::import::{TabularImportConfig, import_tabular};
    let golden = golden();
    let rows = rows(&golden);
    let tmp = tempfile::tempdir().expect("tmp");
    for (model, kind) in [("lgbm_binary", ModelKind::TabularClassifier), ("lgbm_reg", ModelKind::TabularRegressor)] {
        let want = expected(&golden, model);
        let mut csv: String = (0..rows[0].len()).map(|i| format!("x{i},")).collect::<String>() + "y\n";
        for (row, out) in rows.iter().zip(&want) {
            for x in row {
                if !x.is_nan() {
                    csv.push_str(&format!("{x:?}"));
                }
                csv.push(',');
            }
            let label = if kind == ModelKind::TabularClassifier {
                u8::from(out[1] > out[0]).to_string()
            } else {
                format!("{:?}", out[0])
            };
            csv.push_str(&label);
            csv.push('\n');
        }
        let data = tmp.path().join(format!("{model}.csv"));
        fs::write(&data, csv).expect("write");
        let file = golden["models"][model]["file"].as_str().expect("file");
        let config = TabularImportConfig {
            onnx: fixtures().join(file),
            data,
            label: "y".to_owned(),
            ignore: Vec::new(),
            name: model.to_owned(),
            out: tmp.path().join(model),
            replace: false,
            version: None,
            created_at: "2026-12-01T00:00:00Z".to_owned(),
        };
        let manifest = import_tabular(&config).expect("import");
        assert_eq!(manifest.kind, kind);
        match &manifest.metrics {
            ModelMetrics::Classification(m) => assert_eq!(m.accuracy, 1.0, "labels are its own predictions"),
            ModelMetrics::Regression(m) => assert!(m.rmse < 1e-5, "{m:?}"),
        }
        let artifact = Artifact::load(&tmp.path().join(model)).expect("load");
        let schema = artifact.tabular().expect("tabular");
        let (mut encoded, mut warnings) = (Vec::new(), Vec::new());
        for (row, want) in rows.iter().zip(&want) {
            let values: Vec<Cell<'_>> =
                row.iter().map(|&x| if x.is_nan() { Cell::Missing } else { Cell::Number(x) }).collect();
            schema.encode(&values, "", &mut encoded, &mut warnings).expect("encode");
            let mut got = vec![0.0; artifact.engine.n_classes()];
            artifact.engine.predict_proba(&encoded, &mut got);
            let tail = &want[want.len() - got.len()..];
            assert!(max_error(&got, tail) <= TOLERANCE, "{model}: {got:?} vs {want:?} on {row:?}");
        }
    }
}
