//! Several models in one server: `/models`, the per-model routes, v2 per model, SageMaker's
//! target-model header, readiness of every model, and metrics labelled by model.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use retail_model::artifact::{Artifact, ModelKind};
use retail_server::{AppState, ModelConfig, ModelSource, Models, ServerConfig};
use serde_json::{Value, json};

use super::{call, call_full, seed};

/// The embedded model under another version, as if it were another model.
fn renamed(version: &str) -> Artifact {
    let mut artifact = Artifact::embedded_default().expect("embedded model");
    artifact.manifest.version = version.to_owned();
    artifact
}

fn config(name: &str, source: ModelSource) -> ModelConfig {
    ModelConfig { name: name.to_owned(), source, poll: None }
}

/// Two models, `baskets` (the default, version `b1`) and `other` (version `o1`); and a third,
/// `pending`, configured on S3 and not loaded when `with_pending`.
fn two_models(with_pending: bool) -> Arc<AppState> {
    let mut configs = vec![
        config("baskets", ModelSource::Embedded(ModelKind::BasketClassifier)),
        config("other", ModelSource::Local("/m".into())),
    ];
    if with_pending {
        let s3 = retail_server::store::S3Url { bucket: "b".into(), key: "k".into() };
        configs.push(config("pending", ModelSource::S3(s3)));
    }
    let models = Models::new(configs, Some("baskets")).expect("models");
    let state = AppState::with_models(models, ServerConfig::default());
    let slots: Vec<_> = state.models().iter().cloned().collect();
    slots[0].serve_now(renamed("b1"), ModelSource::Embedded(ModelKind::BasketClassifier));
    slots[1].serve_now(renamed("o1"), ModelSource::Local("/m".into()));
    Arc::new(state)
}

async fn post(state: &Arc<AppState>, path: &str, body: &Value) -> (StatusCode, Value) {
    call(state, "POST", path, Some("application/json"), body.to_string()).await
}

#[tokio::test]
async fn models_lists_every_configured_model() {
    let s = two_models(true);
    let (status, body) = call(&s, "GET", "/models", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["default"], "baskets");
    let models = body["models"].as_array().expect("models");
    assert_eq!(models.len(), 3);
    assert_eq!(models[0]["name"], "baskets");
    assert_eq!(models[0]["version"], "b1");
    assert_eq!(models[0]["default"], true);
    assert_eq!(models[0]["kind"], "basket-classifier");
    assert_eq!(models[1]["source"], "local");
    assert_eq!(models[1]["ready"], true);
    assert_eq!(models[2]["ready"], false);
    assert_eq!(models[2]["version"], Value::Null);
    assert_eq!(models[2]["configured_source"], "s3://b/k");
}

#[tokio::test]
async fn the_named_routes_serve_their_model_and_the_unqualified_ones_the_default() {
    let s = two_models(false);
    for (path, version) in [("/predict", "b1"), ("/models/baskets/predict", "b1"), ("/models/other/predict", "o1")] {
        let (status, body) = post(&s, path, &seed()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["model_version"], version, "{path}");
    }
    let batch = json!({"records": [seed(), seed()]});
    let (status, body) = post(&s, "/models/other/predict/batch", &batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["model_version"], "o1");
    assert_eq!(body["predictions"].as_array().expect("predictions").len(), 2);
    for (path, version) in [("/model/info", "b1"), ("/models/other/info", "o1"), ("/models/other/metrics", "o1")] {
        let (status, body) = call(&s, "GET", path, None, Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["version"], version, "{path}");
    }
    let (_, info) = call(&s, "GET", "/models/other/info", None, Body::empty()).await;
    assert_eq!(info["model"], "other");
    assert_eq!(info["configured_source"], "/m");
    let (status, ready) = call(&s, "GET", "/models/other/ready", None, Body::empty()).await;
    assert_eq!((status, ready["model_version"].clone()), (StatusCode::OK, json!("o1")));
}

#[tokio::test]
async fn an_unknown_model_is_a_404_naming_the_configured_ones() {
    let s = two_models(false);
    for (method, path) in [
        ("POST", "/models/nope/predict"),
        ("POST", "/models/nope/predict/batch"),
        ("GET", "/models/nope/info"),
        ("GET", "/models/nope/metrics"),
        ("GET", "/models/nope/ready"),
    ] {
        let body = if method == "POST" { seed().to_string() } else { String::new() };
        let (status, answer) = call(&s, method, path, Some("application/json"), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer["code"], "model_not_found", "{path}: {answer}");
        let message = answer["error"].as_str().expect("message");
        assert!(message.contains("baskets, other"), "{path}: {message}");
    }
}

#[tokio::test]
async fn ready_waits_for_every_model_and_each_model_has_its_own() {
    let s = two_models(true);
    let (status, _) = call(&s, "GET", "/ready", None, Body::empty()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "one model is not loaded");
    let (status, _) = call(&s, "GET", "/models/pending/ready", None, Body::empty()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(&s, "GET", "/models/baskets/ready", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&s, "GET", "/v2/health/ready", None, Body::empty()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(&s, "GET", "/v2/models/other/ready", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(&s, "/models/pending/predict", &seed()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    s.models()
        .get("pending")
        .expect("pending")
        .serve_now(renamed("p1"), ModelSource::Embedded(ModelKind::BasketClassifier));
    let (status, _) = call(&s, "GET", "/ready", None, Body::empty()).await;
    assert_eq!(status, StatusCode::OK, "every model serves");
}

#[tokio::test]
async fn v2_serves_each_loaded_model_under_its_name() {
    let s = two_models(false);
    let infer = json!({"inputs": [
        {"name": "BASKET_SIZE", "shape": [1], "datatype": "BYTES", "data": ["M"]},
        {"name": "BASKET_TYPE", "shape": [1], "datatype": "BYTES", "data": ["MIXED"]},
        {"name": "STORE_REGION", "shape": [1], "datatype": "BYTES", "data": ["LONDON"]},
        {"name": "STORE_FORMAT", "shape": [1], "datatype": "BYTES", "data": ["LS"]},
        {"name": "SPEND", "shape": [1], "datatype": "FP64", "data": [125.5]},
        {"name": "QUANTITY", "shape": [1], "datatype": "FP64", "data": [3]},
        {"name": "PROD_CODE_20", "shape": [1], "datatype": "BYTES", "data": ["FOOD"]},
        {"name": "PROD_CODE_30", "shape": [1], "datatype": "BYTES", "data": ["FRESH"]}]});
    for (name, version) in [("baskets", "b1"), ("other", "o1")] {
        let (status, body) = post(&s, &format!("/v2/models/{name}/infer"), &infer).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!((body["model_name"].clone(), body["model_version"].clone()), (json!(name), json!(version)));
        let (status, meta) = call(&s, "GET", &format!("/v2/models/{name}"), None, Body::empty()).await;
        assert_eq!((status, meta["name"].clone()), (StatusCode::OK, json!(name)));
        let path = format!("/v2/models/{name}/versions/{version}/infer");
        assert_eq!(post(&s, &path, &infer).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(post(&s, "/v2/models/other/versions/b1/infer", &infer).await.0, StatusCode::NOT_FOUND);
    let (status, body) = post(&s, "/v2/models/nope/infer", &infer).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().expect("error").contains("other"), "{body}");
    // A single-model client may use the name in the artifact's manifest.
    let manifest_name = retail_model::MODEL_NAME;
    assert_eq!(call(&s, "GET", &format!("/v2/models/{manifest_name}"), None, Body::empty()).await.0, StatusCode::OK);
}

#[tokio::test]
async fn sagemaker_target_model_header_picks_the_model() {
    let s = two_models(false);
    let invoke = |target: Option<&str>| {
        let mut request =
            Request::post("/invocations").header("content-type", "text/csv").header("accept", "application/json");
        if let Some(target) = target {
            request = request.header("X-Amzn-SageMaker-Target-Model", target);
        }
        request.body(Body::from("M,MIXED,LONDON,LS,125.50,3,FOOD,FRESH")).expect("request")
    };
    for (target, version) in [(None, "b1"), (Some("other"), "o1"), (Some("baskets"), "b1")] {
        let (status, _, body) = call_full(&s, invoke(target)).await;
        let body: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(status, StatusCode::OK, "{target:?}: {body}");
        assert_eq!(body["model_version"], version, "{target:?}");
    }
    let (status, _, _) = call_full(&s, invoke(Some("nope"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn prediction_metrics_name_the_model() {
    let s = two_models(false);
    assert_eq!(post(&s, "/models/other/predict", &seed()).await.0, StatusCode::OK);
    let (_, _, text) = call_full(&s, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    let text = String::from_utf8(text).expect("utf-8");
    let counted = text.lines().any(|l| {
        l.starts_with("retail_api_predictions_total{")
            && l.contains("model=\"other\"")
            && l.contains("model_version=\"o1\"")
    });
    assert!(counted, "no prediction counter for model other:\n{text}");
    assert!(text.lines().any(|l| l.starts_with("retail_api_model_info{") && l.contains("model=\"baskets\"")));
}
