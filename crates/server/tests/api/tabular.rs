//! Tabular models (seed 001) next to the embedded basket classifier: rows by column name or in
//! column order, batches, `/predict-single`, v2 tensors per column or one `[N, n]` tensor,
//! SageMaker CSV, warnings, every bad field named, and the unqualified routes. The models are
//! trained here, once per test process, on small generated tables.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use retail_model::artifact::{Artifact, ModelKind};
use retail_model::progress::Silent;
use retail_model::synth::tabular::{TabularConfig, generate};
use retail_model::tabular::data::Roles;
use retail_model::tabular::split::{Shares, SplitBy};
use retail_model::tabular::training::{Overrides, TabularTrainConfig, train_tabular};
use retail_server::{AppState, ModelConfig, ModelSource, Models, ServerConfig};
use serde_json::{Value, json};

use super::{call, call_full, fields, seed};

/// A small deterministic table: `age` (numeric, some missing), `city` (categorical), `spend`,
/// and a class `churn` (yes/no) and a number `amount` that depend on them.
fn table() -> String {
    table_of(400)
}

/// [`table`] with `rows` rows.
pub(super) fn table_of(rows: usize) -> String {
    let mut state = 7u64;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut csv = String::from("age,city,spend,churn,amount\n");
    for i in 0..rows {
        let age = 18.0 + (next() * 60.0).round();
        let city = ["Leeds", "York", "Hull"][i % 3];
        let spend = (next() * 100.0).round();
        let yes = age > 45.0 && city != "York" || next() < 0.15;
        let amount = 2.0 * age + if city == "Hull" { 30.0 } else { 0.0 } + next() * 5.0;
        let age = if i % 10 == 0 { String::new() } else { age.to_string() };
        csv.push_str(&format!("{age},{city},{spend},{},{amount:.2}\n", if yes { "yes" } else { "no" }));
    }
    csv
}

/// Trains a tabular model named `name` on `csv` (label `label`, `ignore` not a feature).
pub(super) fn train(name: &str, csv: &str, label: &str, ignore: &[&str]) -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let data = dir.join("data.csv");
    std::fs::write(&data, csv).expect("write data");
    let roles =
        Roles { label: label.to_owned(), ignore: ignore.iter().map(|c| (*c).to_owned()).collect(), ..Roles::default() };
    let config = TabularTrainConfig {
        data,
        roles,
        task: None,
        poisson: false,
        split: SplitBy::Random,
        shares: Shares { validation: 0.2, test: 0.2 },
        test_data: None,
        seed: 7,
        overrides: Overrides { max_rounds: Some(30), ..Overrides::default() },
        out: dir.join(name),
        replace: true,
        name: Some(name.to_owned()),
        version: None,
        created_at: "2024-01-01T00:00:00Z".to_owned(),
    };
    train_tabular(&config, &Silent).expect("trained");
    dir.join(name)
}

fn classifier() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| train("churn", &table(), "churn", &["amount"]))
}

fn regressor() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| train("amount", &table(), "amount", &["churn"]))
}

/// The seed's 20 numeric columns `f1..f20`.
fn twenty() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let mut csv = Vec::new();
        generate(TabularConfig { rows: 400, seed: 3 }, &mut csv, None, &Silent).expect("generated");
        train("twenty", &String::from_utf8(csv).expect("utf-8"), "label", &[])
    })
}

/// The embedded basket classifier (the default unless `default` names another) and these
/// tabular models.
fn state(tabular: &[&Path], default: Option<&str>) -> Arc<AppState> {
    let basket = retail_model::MODEL_NAME;
    let mut configs = vec![ModelConfig {
        name: basket.to_owned(),
        source: ModelSource::Embedded(ModelKind::BasketClassifier),
        poll: None,
    }];
    let artifacts: Vec<Artifact> = tabular.iter().map(|path| Artifact::load(path).expect("artifact")).collect();
    for (path, artifact) in tabular.iter().zip(&artifacts) {
        let source = ModelSource::Local(path.display().to_string());
        configs.push(ModelConfig { name: artifact.manifest.name.clone(), source, poll: None });
    }
    let state = AppState::with_models(Models::new(configs, default).expect("models"), ServerConfig::default());
    let slots: Vec<_> = state.models().iter().cloned().collect();
    slots[0]
        .serve_now(Artifact::embedded_default().expect("embedded"), ModelSource::Embedded(ModelKind::BasketClassifier));
    for (slot, artifact) in slots[1..].iter().zip(artifacts) {
        let source = slot.configured_source().clone();
        slot.serve_now(artifact, source);
    }
    Arc::new(state)
}

async fn post(state: &Arc<AppState>, path: &str, body: &Value) -> (StatusCode, Value) {
    call(state, "POST", path, Some("application/json"), body.to_string()).await
}

/// A row of the classifier's table by name, and the same row in the model's column order.
fn row(age: Value, city: &str, spend: f64) -> (Value, Value) {
    let by_name = json!({"features": {"age": age, "city": city, "spend": spend}});
    let schema = Artifact::load(classifier()).expect("artifact").tabular().expect("tabular").clone();
    let in_order: Vec<Value> = schema.columns.iter().map(|c| by_name["features"][&c.name].clone()).collect();
    (by_name, json!({"features": in_order}))
}

#[tokio::test]
async fn rows_by_name_and_in_order_answer_alike_for_a_classifier_and_a_regressor() {
    let s = state(&[classifier(), regressor()], None);
    let (by_name, in_order) = row(json!(50), "Leeds", 20.0);
    let (status, a) = post(&s, "/models/churn/predict", &by_name).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let (_, b) = post(&s, "/models/churn/predict", &in_order).await;
    assert_eq!(a["probabilities"], b["probabilities"]);
    let p = a["probabilities"].as_object().expect("probabilities");
    assert_eq!(p.len(), 2, "{a}");
    assert!((p.values().filter_map(Value::as_f64).sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(p.contains_key(a["prediction"].as_str().expect("a class")));
    assert_eq!(a["warnings"], json!([]));
    assert!(a["request_id"].is_string() && a["model_version"].is_string());
    let features = json!({"features": {"age": 50, "city": "Leeds", "spend": 20}});
    let (status, value) = post(&s, "/models/amount/predict", &features).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let amount = value["prediction"].as_f64().expect("a number");
    assert!((60.0..160.0).contains(&amount), "2 × age plus a little: {value}");
    assert!(value.get("probabilities").is_none() && value["warnings"] == json!([]));
}

#[tokio::test]
async fn null_is_a_missing_value_like_an_absent_column() {
    let s = state(&[classifier()], None);
    let (with_null, in_order) = row(Value::Null, "York", 20.0);
    let absent = json!({"features": {"city": "York", "spend": 20.0}});
    let answers = [
        post(&s, "/models/churn/predict", &with_null).await.1,
        post(&s, "/models/churn/predict", &in_order).await.1,
        post(&s, "/models/churn/predict", &absent).await.1,
        post(&s, "/models/churn/predict", &json!({"features": {"age": "", "city": "York", "spend": "20"}})).await.1,
    ];
    for answer in &answers[1..] {
        assert_eq!(answer["probabilities"], answers[0]["probabilities"], "{answer}");
    }
}

#[tokio::test]
async fn bad_rows_are_422_naming_each_field() {
    let s = state(&[classifier()], None);
    let path = "/models/churn/predict";
    let (status, body) = post(&s, path, &json!({"features": [1, 2]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["features"]);
    let reason = body["details"][0]["reason"].as_str().expect("reason");
    assert!(reason.contains("must hold 3 values") && reason.contains("age") && reason.ends_with("got 2"), "{reason}");
    let (status, body) = post(&s, path, &json!({"features": {"age": true, "city": [1], "spend": "lots"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["features.age", "features.city", "features.spend"], "{body}");
    let (status, body) = post(&s, path, &json!({"features": {"agee": 1, "town": "Leeds", "city": "York"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["features.agee", "features.town"]);
    assert!(body["details"][0]["reason"].as_str().expect("reason").contains("not a column"), "{body}");
    for bad in [json!({"features": 3}), json!({"rows": []}), json!([1, 2, 3])] {
        assert_eq!(post(&s, path, &bad).await.0, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
}

#[tokio::test]
async fn unseen_categories_and_numbers_out_of_range_are_scored_with_warnings() {
    let s = state(&[classifier()], None);
    let long = "Z".repeat(500);
    let body = json!({"features": {"age": 1000, "city": long, "spend": 10}});
    let (status, answer) = post(&s, "/models/churn/predict", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let warnings: Vec<&str> =
        answer["warnings"].as_array().expect("warnings").iter().filter_map(Value::as_str).collect();
    assert_eq!(warnings.len(), 2, "{answer}");
    assert!(warnings.iter().any(|w| w.starts_with("age: 1000 is outside the training range")), "{warnings:?}");
    let unseen = warnings.iter().find(|w| w.starts_with("city: unknown value")).expect("unseen city");
    assert!(unseen.len() < 100 && unseen.contains('…'), "a long value is quoted short: {unseen}");
    let (_, _, metrics) = call_full(&s, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    let metrics = String::from_utf8(metrics).expect("utf-8");
    assert!(
        metrics.lines().any(|l| l.starts_with("retail_api_unseen_categories_total")
            && l.contains("model=\"churn\"")
            && l.contains("field=\"city\"")),
        "unseen categories are counted per column"
    );
}

#[tokio::test]
async fn batches_answer_in_order_and_name_bad_records() {
    let s = state(&[classifier()], None);
    let (a, b) = (row(json!(30), "Hull", 5.0), row(json!(70), "Leeds", 50.0));
    let batch = json!({"records": [a.0, b.1]});
    let (status, body) = post(&s, "/models/churn/predict/batch", &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (i, single) in [&a.0, &b.1].into_iter().enumerate() {
        let one = post(&s, "/models/churn/predict", single).await.1;
        assert_eq!(body["predictions"][i]["probabilities"], one["probabilities"]);
    }
    let bad = json!({"records": [a.0, {"features": {"age": "old"}}]});
    let (status, body) = post(&s, "/models/churn/predict/batch", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["records[1].features.age"]);
}

#[tokio::test]
async fn predict_single_finds_the_tabular_model() {
    let seed_body = json!({"features": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]});
    // One tabular model next to the basket default: /predict-single and /predict both reach it.
    let s = state(&[twenty()], None);
    for path in ["/predict-single", "/predict", "/models/twenty/predict", "/predict-single?model=twenty"] {
        let (status, body) = post(&s, path, &seed_body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(body["probabilities"]["1"].is_f64(), "{path}: {body}");
    }
    let (status, body) = post(&s, "/predict", &seed()).await;
    assert_eq!((status, body["probabilities"].as_object().map(|p| p.len())), (StatusCode::OK, Some(3)));
    // Two tabular models: ?model= picks one; without it the caller is asked to.
    let s = state(&[classifier(), regressor()], None);
    let (by_name, _) = row(json!(40), "York", 1.0);
    let (status, body) = post(&s, "/predict-single?model=amount", &by_name).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["prediction"].is_f64());
    let (status, body) = post(&s, "/predict-single", &by_name).await;
    assert_eq!((status, fields(&body)), (StatusCode::UNPROCESSABLE_ENTITY, vec!["model".to_owned()]));
    assert!(body["details"][0]["reason"].as_str().expect("reason").contains("?model="), "{body}");
    let path = format!("/predict-single?model={}", retail_model::MODEL_NAME);
    assert_eq!(post(&s, &path, &by_name).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(post(&s, "/predict-single?model=nope", &by_name).await.0, StatusCode::NOT_FOUND);
    // A tabular default serves it; no tabular model at all is a 404 that says so.
    let s = state(&[classifier(), regressor()], Some("churn"));
    assert_eq!(post(&s, "/predict-single", &by_name).await.1["probabilities"].as_object().map(|p| p.len()), Some(2));
    let (status, body) = post(&state(&[], None), "/predict-single", &seed_body).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("no_tabular_model")));
}

#[tokio::test]
async fn v2_tensors_per_column_or_one_matrix_score_as_predict_does() {
    let s = state(&[classifier()], None);
    let artifact = Artifact::load(classifier()).expect("artifact");
    let schema = artifact.tabular().expect("tabular");
    let rows = [row(json!(50), "Leeds", 20.0).0, row(Value::Null, "Hull", 3.0).0];
    let column = |name: &str| rows.iter().map(|r| r["features"][name].clone()).collect::<Vec<_>>();
    let per_column: Vec<Value> = retail_server::scoring::v2::tabular_inputs(schema)
        .into_iter()
        .map(|(name, datatype)| json!({"name": name, "datatype": datatype, "shape": [2], "data": column(name)}))
        .collect();
    let matrix: Vec<Value> =
        rows.iter().map(|r| schema.columns.iter().map(|c| r["features"][&c.name].clone()).collect()).collect();
    let matrix = json!([{"name": "input-0", "datatype": "FP64", "shape": [2, schema.len()], "data": matrix}]);
    let mut expected = Vec::new();
    for r in &rows {
        let answer = post(&s, "/models/churn/predict", r).await.1;
        expected.extend(artifact.manifest.classes.iter().map(|c| answer["probabilities"][&c.code].clone()));
    }
    for inputs in [json!(per_column), matrix] {
        let (status, body) = post(&s, "/v2/models/churn/infer", &json!({"inputs": inputs})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outputs"][0]["name"], "label");
        assert_eq!(body["outputs"][1]["data"], json!(expected), "{body}");
    }
    let wrong = json!({"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]});
    assert_eq!(post(&s, "/v2/models/churn/infer", &wrong).await.0, StatusCode::BAD_REQUEST);
    let (_, meta) = call(&s, "GET", "/v2/models/churn", None, Body::empty()).await;
    let names: Vec<&str> =
        meta["inputs"].as_array().expect("inputs").iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>());
}

#[tokio::test]
async fn invocations_read_csv_rows_in_column_order() {
    let s = state(&[classifier(), regressor()], None);
    let schema = Artifact::load(classifier()).expect("artifact").tabular().expect("tabular").clone();
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    let line = |row: [&'static str; 3]| {
        let cell = |name: &str| row[["age", "city", "spend"].iter().position(|c| *c == name).expect("column")];
        names.iter().map(|n| cell(n)).collect::<Vec<_>>().join(",")
    };
    let csv = format!("{}\n{}\n{}\n", names.join(","), line(["50", "Leeds", "20"]), line(["", "York", "3"]));
    let invoke = |model: &str, accept: &str| {
        Request::post("/invocations")
            .header("content-type", "text/csv")
            .header("accept", accept)
            .header("x-amzn-sagemaker-target-model", model)
            .body(Body::from(csv.clone()))
            .expect("request")
    };
    let (status, _, body) = call_full(&s, invoke("churn", "text/csv")).await;
    let text = String::from_utf8(body).expect("utf-8");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(text.lines().count(), 3, "a header and two rows: {text}");
    assert!(text.starts_with("prediction,P_"), "{text}");
    let (status, _, body) = call_full(&s, invoke("churn", "application/json")).await;
    let json: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, StatusCode::OK);
    let single = post(&s, "/models/churn/predict", &row(Value::Null, "York", 3.0).0).await.1;
    assert_eq!(json["predictions"][1]["probabilities"], single["probabilities"], "an empty cell is missing");
    let (status, _, body) = call_full(&s, invoke("amount", "text/csv")).await;
    let text = String::from_utf8(body).expect("utf-8");
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.starts_with("prediction\n") && text.lines().count() == 3, "{text}");
}

#[tokio::test]
async fn issue17_tabular_rows_are_explained_per_column() {
    let s = state(&[classifier(), regressor()], None);
    let (by_name, _) = row(json!(50), "Leeds", 20.0);
    let (status, a) = post(&s, "/predict-single?model=churn&explain=true", &by_name).await;
    assert_eq!(status, StatusCode::OK, "{a}");
    let e = &a["explanation"];
    let classes = a["probabilities"].as_object().expect("probabilities");
    for class in classes.keys() {
        let fields = e["contributions"][class].as_object().expect("per class");
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["age", "city", "spend"], "{e}");
    }
    let features = json!({"features": {"age": 50, "city": "Leeds", "spend": 20}});
    let (status, value) = post(&s, "/models/amount/predict?explain=true", &features).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    let e = &value["explanation"];
    assert_eq!(e["space"], "value", "{value}");
    let sum: f64 = e["contributions"].as_object().expect("one map").values().filter_map(Value::as_f64).sum();
    let prediction = value["prediction"].as_f64().expect("number");
    assert!((e["base"].as_f64().expect("base") + sum - prediction).abs() < 1e-6, "{value}");
}
