//! The seed's Retail Forecast API on a server holding both embedded models (what `retail-api
//! serve` does with no configuration): the seed's requests answer as the seed shows, bad input is
//! a 422 listing each field, unseen ids are scored with a warning, batches and v2 work, and the
//! unqualified routes send each body to the model of its kind.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use retail_model::artifact::{Artifact, ModelKind};
use retail_server::{AppState, ModelConfig, ModelSource, Models, ServerConfig};
use serde_json::{Value, json};

use super::{call, fields, seed};

const FORECAST: &str = "retail-sales-forecast";

pub(super) fn seed_forecast() -> Value {
    json!({"features": {"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}})
}

/// Both embedded models, the basket classifier the default; or the forecast the default.
pub(super) fn both(default: &str) -> Arc<AppState> {
    let configs = [(retail_model::MODEL_NAME, ModelKind::BasketClassifier), (FORECAST, ModelKind::SalesForecast)]
        .map(|(name, kind)| ModelConfig { name: name.to_owned(), source: ModelSource::Embedded(kind), poll: None });
    let models = Models::new(configs.to_vec(), Some(default)).expect("models");
    let state = AppState::with_models(models, ServerConfig::default());
    for slot in state.models().iter() {
        let ModelSource::Embedded(kind) = *slot.configured_source() else { unreachable!() };
        slot.serve_now(Artifact::embedded(kind).expect("embedded model"), ModelSource::Embedded(kind));
    }
    Arc::new(state)
}

async fn post(state: &Arc<AppState>, path: &str, body: &Value) -> (StatusCode, Value) {
    call(state, "POST", path, Some("application/json"), body.to_string()).await
}

fn forecast_version() -> String {
    Artifact::embedded_forecast().expect("forecast").manifest.version
}

#[tokio::test]
async fn the_seed_forecast_request_answers_as_the_seed_shows() {
    let s = both(retail_model::MODEL_NAME);
    for path in ["/predict", &format!("/models/{FORECAST}/predict")] {
        let (status, body) = post(&s, path, &seed_forecast()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let prediction = body["prediction"].as_f64().expect("a number");
        assert!(prediction.is_finite() && prediction > 0.0, "{path}: {body}");
        assert_eq!(body["model_version"], forecast_version().as_str());
        assert_eq!(body["warnings"], json!([]), "the seed's store and product are known");
        assert!(body["request_id"].is_string());
    }
    // The basket seed still goes to the basket model, which stays the default.
    let (status, body) = post(&s, "/predict", &seed()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["prediction"].is_string(), "{body}");
    // The flat fields work too, and give the same number.
    let flat = seed_forecast()["features"].clone();
    let (a, b) = (post(&s, "/predict", &flat).await.1, post(&s, "/predict", &seed_forecast()).await.1);
    assert_eq!(a["prediction"], b["prediction"]);
}

#[tokio::test]
async fn with_the_forecast_as_default_basket_bodies_still_reach_the_basket_model() {
    let s = both(FORECAST);
    let (status, body) = post(&s, "/predict", &seed()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["prediction"].is_string(), "{body}");
    let (status, body) = post(&s, "/predict", &seed_forecast()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["prediction"].is_f64(), "{body}");
    let (_, info) = call(&s, "GET", "/model-info", None, Body::empty()).await;
    assert_eq!(info["kind"], "sales-forecast");
    assert_eq!(info["model"], FORECAST);
    let (_, metrics) = call(&s, "GET", "/model/metrics", None, Body::empty()).await;
    assert!(metrics["metrics"]["poisson_deviance"].is_f64(), "{metrics}");
}

#[tokio::test]
async fn bad_forecast_input_lists_every_field() {
    let s = both(FORECAST);
    let bad = json!({"features": {"store_id": "one", "date": "2023-02-30", "price": -1, "promotion": 2}});
    let (status, body) = post(&s, "/predict", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let listed = fields(&body);
    for field in ["features.store_id", "features.product_id", "features.date", "features.price", "features.promotion"] {
        assert!(listed.iter().any(|f| f == field), "{field} in {listed:?}: {body}");
    }
    for (body, field) in [
        (
            json!({"features": {"store_id": 1, "product_id": 1.5, "date": "2024-01-01", "price": 1, "promotion": 0}}),
            "features.product_id",
        ),
        (
            json!({"features": {"store_id": 1, "product_id": 1, "date": "yesterday", "price": 1, "promotion": 0}}),
            "features.date",
        ),
        (json!({"features": "x"}), "features"),
    ] {
        let (status, answer) = post(&s, "/predict", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(fields(&answer).contains(&field.to_owned()), "{field}: {answer}");
    }
    // Basket records sent to the forecast by name are refused with the reason.
    let (status, body) = post(&s, &format!("/models/{FORECAST}/predict"), &seed()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn unseen_stores_and_products_are_scored_with_a_warning() {
    let s = both(FORECAST);
    let body = json!({"features": {"store_id": 999_999, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}});
    let (status, answer) = post(&s, "/predict", &body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(answer["prediction"].as_f64().is_some_and(|p| p > 0.0));
    let warnings = answer["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{answer}");
    assert!(warnings[0].as_str().expect("warning").starts_with("store_id"), "{answer}");
}

#[tokio::test]
async fn forecast_batches_and_v2() {
    let s = both(retail_model::MODEL_NAME);
    let mut second = seed_forecast();
    second["features"]["promotion"] = json!(1);
    second["features"]["price"] = json!(22.49);
    let batch = json!({"records": [seed_forecast(), second]});
    for path in ["/batch-predict", "/predict/batch", &format!("/models/{FORECAST}/predict/batch")] {
        let (status, body) = post(&s, path, &batch).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let predictions = body["predictions"].as_array().expect("predictions");
        assert_eq!(predictions.len(), 2);
        let (plain, promoted) = (predictions[0]["prediction"].as_f64(), predictions[1]["prediction"].as_f64());
        assert!(promoted > plain, "a promotion at a lower price sells more: {body}");
    }
    let bad = json!({"records": [seed_forecast(), {"features": {"store_id": 1}}]});
    let (status, body) = post(&s, "/batch-predict", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(fields(&body).contains(&"records[1].features.date".to_owned()), "{body}");
    let infer = json!({"inputs": [
        {"name": "store_id", "shape": [2], "datatype": "INT64", "data": [1, 1]},
        {"name": "product_id", "shape": [2], "datatype": "INT64", "data": [123, 123]},
        {"name": "date", "shape": [2], "datatype": "BYTES", "data": ["2024-01-01", "2024-01-01"]},
        {"name": "price", "shape": [2], "datatype": "FP64", "data": [29.99, 22.49]},
        {"name": "promotion", "shape": [2], "datatype": "INT64", "data": [0, 1]}]});
    let (status, body) = post(&s, &format!("/v2/models/{FORECAST}/infer"), &infer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outputs"][0]["name"], "prediction");
    let (_, batch) = post(&s, "/batch-predict", &batch).await;
    assert_eq!(body["outputs"][0]["data"][0], batch["predictions"][0]["prediction"], "v2 and JSON agree");
    let (_, meta) = call(&s, "GET", &format!("/v2/models/{FORECAST}"), None, Body::empty()).await;
    assert_eq!(meta["inputs"].as_array().expect("inputs").len(), 5);
    let mut asks_label = infer.clone();
    asks_label["outputs"] = json!([{"name": "label"}]);
    assert_eq!(post(&s, &format!("/v2/models/{FORECAST}/infer"), &asks_label).await.0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn models_lists_both_kinds() {
    let s = both(retail_model::MODEL_NAME);
    let (_, body) = call(&s, "GET", "/models", None, Body::empty()).await;
    let kinds: Vec<&str> =
        body["models"].as_array().expect("models").iter().map(|m| m["kind"].as_str().expect("kind")).collect();
    assert_eq!(kinds, ["basket-classifier", "sales-forecast"]);
    assert_eq!(body["models"][1]["configured_source"], "embedded:retail-sales-forecast");
}
