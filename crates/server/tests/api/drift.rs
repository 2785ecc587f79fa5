//! Drift monitoring: a tabular model trained here (its artifact carries reference.json) is sent
//! rows resampled from its own training table — unchanged, with one feature tripled, or only
//! rows of one predicted class — and `/models/{name}/drift` and `/metrics` tell which drifted.
//! Also: too few rows give no verdict, a reload starts an empty window, an artifact without a
//! reference says so, and values outside the training range are counted and (basket) warned.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use retail_model::artifact::{Artifact, ModelKind};
use retail_model::drift::{FeatureReference, Histogram, Reference};
use retail_model::features::{FEATURE_NAMES, FIRST_CATEGORICAL};
use retail_server::{AppState, ModelConfig, ModelSource, Models, ServerConfig};
use serde_json::{Value, json};

use super::tabular::{table_of, train};
use super::{call, call_full, seed};

/// The training table (3000 rows, so the validation rows' reference is not noisy) and the model.
fn model() -> &'static (String, PathBuf) {
    static MODEL: OnceLock<(String, PathBuf)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let csv = table_of(3000);
        let path = train("churn-drift", &csv, "churn", &["amount"]);
        (csv, path)
    })
}

/// The training rows as request features (`age` missing as null).
fn rows() -> Vec<Value> {
    model()
        .0
        .lines()
        .skip(1)
        .map(|line| {
            let v: Vec<&str> = line.split(',').collect();
            let number = |s: &str| s.parse::<f64>().map_or(Value::Null, |x| json!(x));
            json!({"age": number(v[0]), "city": v[1], "spend": number(v[2])})
        })
        .collect()
}

/// `n` rows drawn (deterministically, with replacement) from `rows`.
fn resample(rows: &[Value], n: usize) -> Vec<Value> {
    let mut state = 11u64;
    (0..n)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            rows[(state >> 33) as usize % rows.len()].clone()
        })
        .collect()
}

/// A server with `artifact` under the name `name` (the default).
fn serving(name: &str, artifact: Artifact) -> Arc<AppState> {
    let config = ModelConfig { name: name.to_owned(), source: ModelSource::Local("/m".into()), poll: None };
    let state = AppState::with_models(Models::new(vec![config], None).expect("models"), ServerConfig::default());
    state.models().default_slot().serve_now(artifact, ModelSource::Local("/m".into()));
    Arc::new(state)
}

fn trained(name: &str) -> Arc<AppState> {
    serving(name, Artifact::load(Path::new(&model().1)).expect("artifact"))
}

/// Scores `rows` with model `name`: the first 100 one by one, the rest in batches of 100.
async fn send(state: &Arc<AppState>, name: &str, rows: &[Value]) {
    let (singles, rest) = rows.split_at(rows.len().min(100));
    for row in singles {
        let body = json!({"features": row}).to_string();
        let (status, answer) =
            call(state, "POST", &format!("/models/{name}/predict"), Some("application/json"), body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    for chunk in rest.chunks(100) {
        let records: Vec<Value> = chunk.iter().map(|row| json!({"features": row})).collect();
        let body = json!({"records": records}).to_string();
        let path = format!("/models/{name}/predict/batch");
        let (status, answer) = call(state, "POST", &path, Some("application/json"), body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
}

async fn drift(state: &Arc<AppState>, name: &str) -> Value {
    let (status, body) = call(state, "GET", &format!("/models/{name}/drift"), None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn feature<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["features"].as_array().expect("features").iter().find(|f| f["name"] == name).expect("feature")
}

async fn metrics(state: &Arc<AppState>) -> String {
    let request = Request::get("/metrics").body(Body::empty()).expect("request");
    String::from_utf8(call_full(state, request).await.2).expect("utf-8")
}

/// The value of the series starting with `series` in a Prometheus exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn in_distribution_traffic_does_not_drift_and_few_rows_give_no_verdict() {
    let s = trained("drift-steady");
    let rows = resample(&rows(), 2000);
    send(&s, "drift-steady", &rows[..400]).await;
    let early = drift(&s, "drift-steady").await;
    assert_eq!((early["available"].as_bool(), early["window"]["rows"].as_u64()), (Some(true), Some(400)));
    for f in early["features"].as_array().expect("features").iter().chain([&early["prediction"]]) {
        assert_eq!((f["status"].as_str(), f["drifted"].as_bool()), (Some("insufficient_data"), Some(false)), "{f}");
    }
    send(&s, "drift-steady", &rows[400..]).await;
    let report = drift(&s, "drift-steady").await;
    assert_eq!(report["window"]["rows"], 2000);
    assert_eq!((report["min_rows"].as_u64(), report["window"]["max_rows"].as_u64()), (Some(500), Some(10_000)));
    assert!(report["window"]["since"].as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok()));
    for f in report["features"].as_array().expect("features") {
        assert!(f["psi"].as_f64().expect("psi") < 0.1, "{report}");
        assert_eq!(f["drifted"], false, "{report}");
    }
    assert_eq!((report["dataset_drift"].as_bool(), report["drifted_features"].as_u64()), (Some(false), Some(0)));
    let (_, default) = call(&s, "GET", "/model/drift", None, Body::empty()).await;
    assert_eq!(default["window"]["rows"], 2000, "the unqualified route serves the default model");
}

#[tokio::test]
async fn a_tripled_feature_drifts_shows_in_metrics_and_a_reload_resets_the_window() {
    let s = trained("drift-shifted");
    let rows: Vec<Value> = resample(&rows(), 2000)
        .into_iter()
        .map(|mut row| {
            row["spend"] = json!(row["spend"].as_f64().expect("spend") * 3.0);
            row
        })
        .collect();
    send(&s, "drift-shifted", &rows).await;
    let report = drift(&s, "drift-shifted").await;
    let spend = feature(&report, "spend");
    assert!(spend["psi"].as_f64().expect("psi") >= 0.2, "{report}");
    assert_eq!((spend["drifted"].as_bool(), spend["status"].as_str()), (Some(true), Some("alert")));
    assert_eq!(feature(&report, "city")["drifted"], false, "{report}");
    let text = metrics(&s).await;
    let gauge = sample(&text, r#"retail_api_feature_drift{model="drift-shifted",feature="spend",statistic="psi"}"#);
    assert!(gauge.is_some_and(|g| g >= 0.2), "{gauge:?}");
    assert_eq!(sample(&text, r#"retail_api_drift_window_rows{model="drift-shifted"}"#), Some(2000.0));
    let outside = sample(&text, r#"retail_api_out_of_range_total{model="drift-shifted",feature="spend"}"#);
    assert!(outside.is_some_and(|n| n > 500.0), "spend above 110 is out of range: {outside:?}");

    let mut next = Artifact::load(Path::new(&model().1)).expect("artifact");
    next.manifest.version = "next".to_owned();
    s.models().default_slot().serve_now(next, ModelSource::Local("/m".into()));
    let report = drift(&s, "drift-shifted").await;
    assert_eq!((report["model_version"].as_str(), report["window"]["rows"].as_u64()), (Some("next"), Some(0)));
    assert!(report["window"]["since"].is_string(), "the new window has started");
    assert_eq!(feature(&report, "spend")["status"], "insufficient_data");
}

#[tokio::test]
async fn rows_of_one_predicted_class_show_prediction_drift() {
    let artifact = Artifact::load(Path::new(&model().1)).expect("artifact");
    let reference = artifact.reference.clone().expect("a trained artifact has a reference");
    let classes = reference.prediction.counts().to_vec();
    // The rarer class in the reference mix: a window of only that class shifts it most.
    let rare = usize::from(classes[1] < classes[0]);
    let code = artifact.manifest.classes[rare].code.clone();
    let of_class: Vec<Value> = rows()
        .into_iter()
        .filter(|row| {
            let body = json!({"features": row}).to_string();
            let Ok(one) = retail_server::scoring::score_one(&artifact, body.as_bytes(), false) else { return false };
            serde_json::to_value(&one).expect("json")["prediction"] == code.as_str()
        })
        .collect();
    assert!(of_class.len() > 20, "{} rows predicted {code}", of_class.len());
    let s = trained("drift-one-class");
    send(&s, "drift-one-class", &resample(&of_class, 1000)).await;
    let report = drift(&s, "drift-one-class").await;
    let prediction = &report["prediction"];
    assert_eq!(
        (prediction["drifted"].as_bool(), prediction["status"].as_str()),
        (Some(true), Some("alert")),
        "{report}"
    );
    assert!(prediction["linf"].as_f64().is_some_and(|l| l > 0.3), "{report}");
}

#[tokio::test]
async fn an_artifact_without_reference_has_no_drift() {
    // As loaded from an artifact written before references were recorded.
    let mut artifact = Artifact::embedded_default().expect("embedded model");
    artifact.reference = None;
    let s =
        Arc::new(AppState::new(artifact, ModelSource::Embedded(ModelKind::BasketClassifier), ServerConfig::default()));
    let (status, report) = call(&s, "GET", "/model/drift", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["available"], false, "{report}");
    assert!(report["reason"].as_str().is_some_and(|r| r.contains("reference")));
    assert_eq!(report["features"], json!([]));
}

/// The embedded basket classifier with a reference: SPEND in [0.29, 428], QUANTITY in [1, 40],
/// UNIT_PRICE in [0.1, 50].
fn basket_with_reference() -> Artifact {
    let mut artifact = Artifact::embedded(ModelKind::BasketClassifier).expect("embedded");
    let numeric =
        |edges: Vec<f64>, range| Histogram::Numeric { counts: vec![10; edges.len() + 2], edges }.into_feature(range);
    let mut features = vec![
        numeric(vec![20.0, 100.0], [0.29, 428.0]),
        numeric(vec![3.0, 10.0], [1.0, 40.0]),
        numeric(vec![1.0, 5.0], [0.1, 50.0]),
    ];
    features.extend(
        (FIRST_CATEGORICAL..FEATURE_NAMES.len())
            .map(|_| Histogram::Categorical { codes: vec![0, 1, 2], counts: vec![10; 4] }.into_feature(None)),
    );
    for (f, name) in features.iter_mut().zip(FEATURE_NAMES) {
        f.name = name.to_owned();
    }
    let prediction = Histogram::Categorical { codes: vec![0, 1, 2], counts: vec![10; 4] };
    artifact.reference = Some(Reference { rows: 40, features, prediction, rules: Vec::new() });
    artifact
}

trait IntoFeature {
    fn into_feature(self, range: impl Into<Option<[f64; 2]>>) -> FeatureReference;
}

impl IntoFeature for Histogram {
    fn into_feature(self, range: impl Into<Option<[f64; 2]>>) -> FeatureReference {
        FeatureReference { name: String::new(), histogram: self, range: range.into() }
    }
}

#[tokio::test]
async fn values_outside_the_training_range_are_warned_and_counted() {
    let s = serving("drift-basket", basket_with_reference());
    let mut record = seed();
    record["SPEND"] = json!(9_000_000.0);
    let (status, answer) = super::predict(&s, record.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let warnings: Vec<&str> =
        answer["warnings"].as_array().expect("warnings").iter().filter_map(Value::as_str).collect();
    assert!(warnings.contains(&"SPEND: 9000000 is outside the training range [0.29, 428]"), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.starts_with("UNIT_PRICE: 3000000 is outside")), "{warnings:?}");
    let batch = json!({"records": [record, seed()]}).to_string();
    let (_, answers) = call(&s, "POST", "/predict/batch", Some("application/json"), batch).await;
    assert_eq!(answers["predictions"][0]["warnings"].as_array().map(Vec::len), Some(2), "{answers}");
    assert_eq!(answers["predictions"][1]["warnings"], json!([]), "the seed is within range");
    let (_, seeded) = super::predict(&s, seed()).await;
    assert_eq!(seeded["warnings"], json!([]));
    let text = metrics(&s).await;
    let counted = sample(&text, r#"retail_api_out_of_range_total{model="drift-basket",feature="SPEND"}"#);
    assert_eq!(counted, Some(2.0));
    let report = drift(&s, "drift-basket").await;
    assert_eq!((report["available"].as_bool(), report["window"]["rows"].as_u64()), (Some(true), Some(4)));
}

#[tokio::test]
async fn a_basket_size_its_spend_contradicts_is_warned() {
    // The shipped model learned from its training baskets that BASKET_SIZE follows SPEND.
    let artifact = Artifact::embedded(ModelKind::BasketClassifier).expect("embedded");
    let rules = &artifact.reference.as_ref().expect("reference").rules;
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(rules[0].labels, ["S", "M", "L"]);
    let s = serving("rules-basket", artifact);
    let warnings = |answer: &Value| answer["warnings"].as_array().expect("warnings").clone();
    for (size, spend) in [("L", 3.0), ("S", 300.0), ("M", 14.0)] {
        let mut record = seed();
        record["BASKET_SIZE"] = json!(size);
        record["SPEND"] = json!(spend);
        let (status, answer) = super::predict(&s, record).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let found = warnings(&answer);
        assert_eq!(found.len(), 1, "{size} with {spend}: {answer}");
        let text = found[0].as_str().expect("text");
        assert!(
            text.starts_with(&format!("BASKET_SIZE {size:?} contradicts SPEND {spend}: in the training data, SPEND "))
        );
    }
    let mut large = seed();
    large["BASKET_SIZE"] = json!("L");
    large["SPEND"] = json!(3.0);
    let (_, answer) = super::predict(&s, large).await;
    assert_eq!(
        answer["warnings"][0],
        "BASKET_SIZE \"L\" contradicts SPEND 3: in the training data, SPEND below 15 always came with BASKET_SIZE \"S\""
    );
    for (size, spend) in [("S", 3.0), ("M", 125.5), ("L", 300.0), ("L", 5000.0)] {
        let mut record = seed();
        record["BASKET_SIZE"] = json!(size);
        record["SPEND"] = json!(spend);
        let (_, answer) = super::predict(&s, record).await;
        assert!(warnings(&answer).iter().all(|w| !w.as_str().unwrap_or("").contains("contradicts")), "{answer}");
    }
}
