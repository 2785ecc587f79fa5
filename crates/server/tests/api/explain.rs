//! Issue 17: `?explain=true` on the scoring routes, the importance routes, and the `explain`
//! scope.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use retail_model::artifact::{Artifact, ModelKind};
use retail_model::explain::ExplainError;
use retail_server::auth::{Auth, AuthConfig, Scopes, hash_line};
use retail_server::{AppState, ModelSource, ServerConfig};
use serde_json::{Value, json};

use super::forecast::{both, seed_forecast};
use super::{call, call_full, seed, state};

async fn post(state: &Arc<AppState>, path: &str, body: &Value) -> (StatusCode, Value) {
    call(state, "POST", path, Some("application/json"), body.to_string()).await
}

fn numbers(map: &Value) -> Vec<f64> {
    map.as_object().expect("object").values().map(|v| v.as_f64().expect("number")).collect()
}

/// The classifier's margins from an answer's explanation (base + Σ contributions per class),
/// checked against its probabilities: softmax of the margins.
fn check_classifier(answer: &Value) -> Vec<f64> {
    let e = &answer["explanation"];
    assert_eq!(e["space"], "log_odds", "{answer}");
    let classes: Vec<&String> = answer["probabilities"].as_object().expect("probabilities").keys().collect();
    let margins: Vec<f64> = classes
        .iter()
        .map(|c| {
            let fields = e["contributions"][c.as_str()].as_object().expect("contributions of the class");
            assert_eq!(fields.len(), 8, "one contribution per request field: {fields:?}");
            e["base"][c.as_str()].as_f64().expect("base") + numbers(&e["contributions"][c.as_str()]).iter().sum::<f64>()
        })
        .collect();
    let top = margins.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = margins.iter().map(|m| (m - top).exp()).sum();
    for (c, m) in classes.iter().zip(&margins) {
        let p = answer["probabilities"][c.as_str()].as_f64().expect("p");
        assert!(((m - top).exp() / total - p).abs() < 1e-9, "{c}: softmax of the margins is the probability");
    }
    margins
}

#[tokio::test]
async fn issue17_the_seed_basket_is_explained_and_base_plus_contributions_is_its_margin() {
    let s = state();
    let (status, answer) = post(&s, "/predict?explain=true", &seed()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let margins = check_classifier(&answer);
    // The margin itself: the engine's raw class scores of the seed basket's feature row.
    let artifact = Artifact::embedded_default().expect("model");
    let record = retail_model::features::BasketRecord {
        spend: 125.5,
        quantity: 3.0,
        prod_code_20: "FOOD",
        prod_code_30: "FRESH",
        basket_size: "M",
        basket_type: "MIXED",
        store_region: "LONDON",
        store_format: "LS",
    };
    let row = artifact.pipeline().expect("basket").encode(&record).expect("encoded").features;
    let mut raw = vec![0.0; margins.len()];
    artifact.engine.raw_scores(&row, &mut raw);
    for (m, r) in margins.iter().zip(&raw) {
        assert!((m - r).abs() < 1e-9, "margin {m} vs raw score {r}");
    }
    let spend = answer["explanation"]["contributions"]["UM"]["SPEND"].as_f64().expect("SPEND");
    assert!(spend.abs() > 1e-6, "SPEND moves the seed basket's UM score");
    let (status, named) = post(&s, "/models/retail-price-sensitivity/predict?explain=1", &seed()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(named["explanation"], answer["explanation"]);
}

#[tokio::test]
async fn issue17_without_explain_the_answer_is_byte_identical() {
    let s = state();
    let mut answers = Vec::new();
    for path in ["/predict", "/predict?explain=false", "/predict?explain=0", "/predict?errors=x"] {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .header("x-request-id", "issue17")
            .body(Body::from(seed().to_string()))
            .expect("request");
        let (status, _, body) = call_full(&s, request).await;
        assert_eq!(status, StatusCode::OK);
        answers.push(body);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "identical answers");
    assert!(!String::from_utf8_lossy(&answers[0]).contains("explanation"));
}

#[tokio::test]
async fn issue17_a_bad_explain_value_is_a_422_naming_the_parameter() {
    let s = state();
    for path in
        ["/predict?explain=yes", "/predict/batch?explain=TRUE", "/models/retail-price-sensitivity/predict?explain="]
    {
        let body = if path.contains("batch") { json!({"records": [seed()]}) } else { seed() };
        let (status, answer) = post(&s, path, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {answer}");
        assert_eq!(answer["details"][0]["field"], "explain", "{answer}");
    }
}

#[tokio::test]
async fn issue17_batches_explain_every_record_and_inline_errors_keep_their_place() {
    let s = state();
    let mut other = seed();
    other["SPEND"] = json!(12.0);
    let body = json!({"records": [seed(), {"SPEND": -1}, other], "options": {"errors": "inline"}});
    for path in [
        "/predict/batch?explain=true",
        "/batch-predict?explain=true",
        "/models/retail-price-sensitivity/predict/batch?explain=true",
    ] {
        let (status, answer) = post(&s, path, &body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
        let items = answer["predictions"].as_array().expect("predictions");
        check_classifier(&items[0]);
        assert!(items[1].get("explanation").is_none(), "a failed record has no explanation");
        check_classifier(&items[2]);
        assert_ne!(items[0]["explanation"], items[2]["explanation"]);
        let (_, single) = post(&s, "/predict?explain=true", &seed()).await;
        assert_eq!(items[0]["explanation"], single["explanation"], "a batch explains as /predict does");
    }
    let (_, plain) = post(&s, "/predict/batch", &body).await;
    assert!(plain["predictions"].as_array().expect("items").iter().all(|i| i.get("explanation").is_none()));
}

#[tokio::test]
async fn issue17_forecasts_are_explained_in_log_space() {
    let s = both(retail_model::MODEL_NAME);
    let (status, answer) = post(&s, "/predict?explain=true", &seed_forecast()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let e = &answer["explanation"];
    assert_eq!(e["space"], "log");
    let contributions = e["contributions"].as_object().expect("one contributions map");
    let fields: Vec<&str> = contributions.keys().map(String::as_str).collect();
    assert_eq!(fields.len(), 5, "{fields:?}");
    let margin = e["base"].as_f64().expect("one base") + numbers(&e["contributions"]).iter().sum::<f64>();
    let prediction = answer["prediction"].as_f64().expect("prediction");
    assert!(
        (margin.exp() - prediction).abs() < 1e-9 * prediction.max(1.0),
        "exp(margin) {} vs {prediction}",
        margin.exp()
    );
    let batch = json!({"records": [seed_forecast(), seed_forecast()]});
    let (status, answer) = post(&s, "/models/retail-sales-forecast/predict/batch?explain=true", &batch).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["predictions"][1]["explanation"], e.clone());
}

/// The embedded basket model as an artifact made before explanations: no covers, no importance.
fn without_covers() -> Arc<AppState> {
    let mut artifact = Artifact::embedded_default().expect("model");
    artifact.explainer = Err(ExplainError::NoCovers { reason: "the artifact has no explain.json".to_owned() });
    artifact.importance = None;
    let source = ModelSource::Embedded(ModelKind::BasketClassifier);
    Arc::new(AppState::new(artifact, source, ServerConfig::default()))
}

#[tokio::test]
async fn issue17_a_model_without_covers_answers_409_and_still_predicts() {
    let s = without_covers();
    for (path, body) in
        [("/predict?explain=true", seed()), ("/predict/batch?explain=true", json!({"records": [seed()]}))]
    {
        let (status, answer) = post(&s, path, &body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
        assert_eq!(answer["code"], "explanation_unavailable");
        assert!(answer["error"].as_str().expect("message").contains("explain.json"), "{answer}");
    }
    let (status, _) = post(&s, "/predict", &seed()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = call(&s, "GET", "/model/importance", None, Body::empty()).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::CONFLICT, Some("explanation_unavailable")));
    let (_, info) = call(&s, "GET", "/model/info", None, Body::empty()).await;
    assert_eq!(info["explanations"]["available"], false);
    assert_eq!(info["explanations"]["importance"], Value::Null);
}

#[tokio::test]
async fn issue17_importance_is_served_per_model_and_linked_from_info() {
    let s = both(retail_model::MODEL_NAME);
    let (status, answer) = call(&s, "GET", "/model/importance", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["outputs"], json!(["LA", "MM", "UM"]));
    let fields = answer["fields"].as_array().expect("fields");
    assert_eq!(fields.len(), 8);
    let means: Vec<f64> = fields.iter().map(|f| f["mean_abs"].as_f64().expect("mean")).collect();
    assert!(means.windows(2).all(|w| w[0] >= w[1]), "most important first: {means:?}");
    assert!((numbers(&fields[0]["per_output"]).iter().sum::<f64>() - means[0]).abs() < 1e-9);
    let (status, forecast) = call(&s, "GET", "/models/retail-sales-forecast/importance", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(forecast["space"], "log");
    let (_, info) = call(&s, "GET", "/model/info", None, Body::empty()).await;
    let explanations = &info["explanations"];
    assert_eq!(explanations["importance"], "/models/retail-price-sensitivity/importance");
    assert_eq!(explanations["fields"][0], "SPEND");
}

const PREDICT_ONLY: &str = "rk_issue17_predict_only_key_0123456789";
const EXPLAINER: &str = "rk_issue17_predict_and_explain_key_0123";

/// The embedded model behind API keys: one with `predict` only, one with `predict explain`.
fn with_keys(dir: &tempfile::TempDir) -> Arc<AppState> {
    let scopes = |list: &str| Scopes::parse_list(list).expect("scopes");
    let lines = [
        hash_line("predictor", PREDICT_ONLY, scopes("predict model:read"), None),
        hash_line("explainer", EXPLAINER, scopes("predict explain"), None),
    ];
    let path = dir.path().join("keys");
    std::fs::write(&path, lines.join("\n") + "\n").expect("key file");
    let auth = Auth::new(&AuthConfig { api_keys_file: Some(path), ..AuthConfig::default() }).expect("auth");
    let artifact = Artifact::embedded_default().expect("model");
    let source = ModelSource::Embedded(ModelKind::BasketClassifier);
    Arc::new(AppState::new(artifact, source, ServerConfig::default()).with_auth(auth))
}

async fn post_with_key(state: &Arc<AppState>, path: &str, key: &str, body: &Value) -> (StatusCode, String, Value) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(Body::from(body.to_string()))
        .expect("request");
    let (status, headers, body) = call_full(state, request).await;
    let challenge = headers.get("www-authenticate").map(|v| v.to_str().unwrap_or_default().to_owned());
    (status, challenge.unwrap_or_default(), serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn issue17_explanations_need_the_explain_scope_predictions_do_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = with_keys(&dir);
    let batch = json!({"records": [seed()]});
    for (path, body) in [("/predict?explain=true", seed()), ("/predict/batch?explain=true", batch.clone())] {
        let (status, challenge, answer) = post_with_key(&s, path, PREDICT_ONLY, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(answer["code"], "insufficient_scope");
        assert!(challenge.contains("scope=\"explain\""), "{challenge}");
        let (status, _, answer) = post_with_key(&s, path, EXPLAINER, &body).await;
        assert_eq!(status, StatusCode::OK, "{path}: {answer}");
    }
    let (status, _, answer) = post_with_key(&s, "/predict", PREDICT_ONLY, &seed()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(answer.get("explanation").is_none());
    let (status, _, answer) = post_with_key(&s, "/predict?explain=false", PREDICT_ONLY, &seed()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// A v2 request for the seed basket asking for `outputs`.
fn v2_request(outputs: &[&str]) -> Value {
    let mut request = super::v2_inputs(&[seed()]);
    request["outputs"] = outputs.iter().map(|name| json!({"name": name})).collect();
    request
}

const INFER: &str = "/v2/models/retail-price-sensitivity/infer";

#[tokio::test]
async fn issue17_v2_answers_a_contributions_tensor_with_its_field_order_and_base() {
    let s = state();
    let (status, answer) = post(&s, INFER, &v2_request(&["probabilities", "contributions"])).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let outputs = answer["outputs"].as_array().expect("outputs");
    let names: Vec<&str> = outputs.iter().map(|o| o["name"].as_str().expect("name")).collect();
    assert_eq!(names, ["probabilities", "contributions", "base"]);
    let (contributions, base) = (&outputs[1], &outputs[2]);
    assert_eq!(contributions["shape"], json!([1, 3, 8]));
    assert_eq!(base["shape"], json!([1, 3]));
    let fields = contributions["parameters"]["fields"].as_array().expect("fields");
    assert_eq!(contributions["parameters"]["outputs"], json!(["LA", "MM", "UM"]));
    let (_, explained) = post(&s, "/predict?explain=true", &seed()).await;
    let data = contributions["data"].as_array().expect("data");
    for (c, class) in ["LA", "MM", "UM"].iter().enumerate() {
        assert_eq!(base["data"][c], explained["explanation"]["base"][class]);
        for (f, field) in fields.iter().enumerate() {
            let field = field.as_str().expect("field");
            assert_eq!(
                data[c * fields.len() + f],
                explained["explanation"]["contributions"][class][field],
                "{class} {field}"
            );
        }
    }
    let (status, plain) = post(&s, INFER, &super::v2_inputs(&[seed()])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(plain["outputs"].as_array().expect("outputs").len(), 2, "contributions only when asked for: {plain}");
    let (_, metadata) = call(&s, "GET", "/v2/models/retail-price-sensitivity", None, Body::empty()).await;
    assert_eq!(metadata["parameters"]["contribution_fields"], json!(fields));
    assert!(metadata["outputs"].as_array().expect("outputs").iter().any(|o| o["name"] == "contributions"));
}

#[tokio::test]
async fn issue17_v2_contributions_need_covers_and_the_explain_scope() {
    let (status, answer) = post(&without_covers(), INFER, &v2_request(&["contributions"])).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert!(answer["error"].as_str().expect("error").contains("explain.json"));
    let dir = tempfile::tempdir().expect("tmp");
    let s = with_keys(&dir);
    let (status, _, answer) = post_with_key(&s, INFER, PREDICT_ONLY, &v2_request(&["contributions"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _, _) = post_with_key(&s, INFER, PREDICT_ONLY, &v2_request(&["label"])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, answer) = post_with_key(&s, INFER, EXPLAINER, &v2_request(&["contributions"])).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}
