//! HTTP API tests through the router (`oneshot`), against the embedded default model.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use retail_model::artifact::Artifact;
use retail_server::{AppState, ModelSource, router};
use serde_json::{Value, json};
use tower::ServiceExt;

fn state() -> Arc<AppState> {
    Arc::new(AppState::new(
        Artifact::embedded_default().expect("embedded model"),
        ModelSource::Embedded,
    ))
}

async fn call(
    state: &Arc<AppState>,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let response = router(state.clone())
        .oneshot(request.body(body.into()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn predict(state: &Arc<AppState>, body: Value) -> (StatusCode, Value) {
    call(
        state,
        "POST",
        "/predict",
        Some("application/json"),
        body.to_string(),
    )
    .await
}

fn seed() -> Value {
    json!({"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"})
}

fn fields(body: &Value) -> Vec<String> {
    body["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["field"].as_str().expect("field").to_owned())
        .collect()
}

#[tokio::test]
async fn seed_request_is_answered_without_warnings() {
    let s = state();
    let (status, body) = predict(&s, seed()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(["LA", "MM", "UM"].contains(&body["prediction"].as_str().expect("prediction")));
    let p: f64 = ["LA", "MM", "UM"]
        .iter()
        .map(|c| body["probabilities"][c].as_f64().expect("p"))
        .sum();
    assert!((p - 1.0).abs() < 1e-9);
    assert_eq!(body["warnings"], json!([]));
    assert_eq!(body["model_version"], s.artifact.manifest.version.as_str());
    assert!(body["label"].is_string());
}

#[tokio::test]
async fn basket_items_seed_shape_goes_through_the_pipeline() {
    let s = state();
    let items = json!({"basket_items": {"P1001": {"product_id": "P1001", "quantity": 2, "price": 10.99, "category": "grocery"}, "P2002": {"product_id": "P2002", "quantity": 1, "price": 25.50, "category": "electronics"}}, "customer_id": "CUST123"});
    let (status, body) = predict(&s, items).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["warnings"].as_array().expect("warnings").len(),
        2,
        "store region and format not provided: {body}"
    );
    // The same basket as a flat record (what the pipeline derives) gets the same answer.
    let flat = json!({"SPEND": 47.48, "QUANTITY": 3, "PROD_CODE_20": "GENERAL", "PROD_CODE_30": "ELECTRONICS", "BASKET_SIZE": "M", "BASKET_TYPE": "MIXED", "STORE_REGION": "", "STORE_FORMAT": ""});
    let (_, flat_body) = predict(&s, flat).await;
    assert_eq!(body["probabilities"], flat_body["probabilities"]);
    // With store fields and no category: still scored.
    let (status, body) = predict(&s, json!({"basket_items": [{"quantity": 2, "price": 10.0}], "STORE_REGION": "LONDON", "STORE_FORMAT": "SS"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unknown_categories_are_scored_and_warned() {
    let s = state();
    let mut record = seed();
    record["STORE_REGION"] = json!("MARS");
    let (status, body) = predict(&s, record).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["warnings"],
        json!(["STORE_REGION: unknown value \"MARS\"; scored as unseen"])
    );
}

#[tokio::test]
async fn invalid_fields_are_all_listed() {
    let s = state();
    let (status, body) = predict(&s, json!({"SPEND": "x", "QUANTITY": -1, "BASKET_SIZE": 3})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_input");
    let f = fields(&body);
    for expected in [
        "SPEND",
        "QUANTITY",
        "BASKET_SIZE",
        "PROD_CODE_20",
        "STORE_FORMAT",
    ] {
        assert!(f.contains(&expected.to_owned()), "{expected} in {f:?}");
    }
    let mut record = seed();
    record["SPEND"] = json!(-3);
    record["QUANTITY"] = json!(1e9);
    let (status, body) = predict(&s, record).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["SPEND", "QUANTITY"]);
    assert!(
        body["details"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("-3")
    );
    let (status, body) = predict(&s, json!({"basket_items": {}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["basket_items"]);
    let (status, body) = predict(
        &s,
        json!({"basket_items": {"a": {"quantity": 0, "price": "1"}, "b": 7}}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        fields(&body),
        [
            "basket_items.a.price",
            "basket_items.b",
            "basket_items.a.quantity"
        ]
    );
    let (status, _) = predict(&s, json!([1, 2])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn protocol_errors_have_json_bodies() {
    let s = state();
    let (status, body) = call(&s, "POST", "/predict", Some("application/json"), "{").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (status, body) = call(
        &s,
        "POST",
        "/predict",
        Some("text/plain"),
        seed().to_string(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let (status, body) = call(
        &s,
        "POST",
        "/predict",
        Some("application/json"),
        vec![b' '; 2 * 1024 * 1024],
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, body) = call(&s, "GET", "/nope", None, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, body) = call(&s, "DELETE", "/predict", None, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn health_readiness_and_model_endpoints() {
    let s = state();
    for path in ["/health", "/healthz"] {
        let (status, body) = call(&s, "GET", path, None, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");
        assert!(
            body["timestamp"]
                .as_str()
                .expect("timestamp")
                .ends_with('Z')
        );
    }
    assert_eq!(call(&s, "GET", "/ready", None, "").await.0, StatusCode::OK);
    for path in ["/model/info", "/model-info"] {
        let (status, body) = call(&s, "GET", path, None, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["source"], "embedded");
        assert_eq!(body["classes"].as_array().expect("classes").len(), 3);
        assert_eq!(
            body["input_schema"]["features"]
                .as_array()
                .expect("features")
                .len(),
            9
        );
    }
    let (status, body) = call(&s, "GET", "/model/metrics", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["metrics"]["accuracy"].as_f64().expect("accuracy") > 0.6);
    s.start_draining();
    let (status, body) = call(&s, "GET", "/ready", None, "").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready"))
    );
}
