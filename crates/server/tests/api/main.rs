//! HTTP API tests through the router (`oneshot`), against the embedded default model.

mod edge;
mod explain;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use retail_model::artifact::{Artifact, ModelKind};
use retail_server::{AppState, ModelSource, ServerConfig, router};
use serde_json::{Value, json};
use tower::ServiceExt;

mod card;
mod contract;
mod drift;
mod forecast;
mod hostile;
mod models;
mod tabular;

fn state() -> Arc<AppState> {
    state_with(ServerConfig::default())
}

fn state_with(config: ServerConfig) -> Arc<AppState> {
    let artifact = Artifact::embedded_default().expect("embedded model");
    Arc::new(AppState::new(artifact, ModelSource::Embedded(ModelKind::BasketClassifier), config))
}

async fn call_full(state: &Arc<AppState>, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let response = router(state.clone()).oneshot(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, bytes.to_vec())
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
    let response = router(state.clone()).oneshot(request.body(body.into()).expect("request")).await.expect("response");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn predict(state: &Arc<AppState>, body: Value) -> (StatusCode, Value) {
    call(state, "POST", "/predict", Some("application/json"), body.to_string()).await
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
    let p: f64 = ["LA", "MM", "UM"].iter().map(|c| body["probabilities"][c].as_f64().expect("p")).sum();
    assert!((p - 1.0).abs() < 1e-9);
    assert_eq!(body["warnings"], json!([]));
    assert_eq!(body["model_version"], s.serving().expect("model").artifact.manifest.version.as_str());
    assert!(body["label"].is_string());
}

#[tokio::test]
async fn basket_items_seed_shape_goes_through_the_pipeline() {
    let s = state();
    let items = json!({"basket_items": {"P1001": {"product_id": "P1001", "quantity": 2, "price": 10.99, "category": "grocery"}, "P2002": {"product_id": "P2002", "quantity": 1, "price": 25.50, "category": "electronics"}}, "customer_id": "CUST123"});
    let (status, body) = predict(&s, items).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["warnings"].as_array().expect("warnings").len(), 2, "store region and format not provided: {body}");
    // The same basket as a flat record (what the pipeline derives) gets the same answer.
    let flat = json!({"SPEND": 47.48, "QUANTITY": 3, "PROD_CODE_20": "GENERAL", "PROD_CODE_30": "ELECTRONICS", "BASKET_SIZE": "M", "BASKET_TYPE": "MIXED", "STORE_REGION": "", "STORE_FORMAT": ""});
    let (_, flat_body) = predict(&s, flat).await;
    assert_eq!(body["probabilities"], flat_body["probabilities"]);
    // With store fields and no category: still scored.
    let (status, body) = predict(
        &s,
        json!({"basket_items": [{"quantity": 2, "price": 10.0}], "STORE_REGION": "LONDON", "STORE_FORMAT": "SS"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Issue 18: a `basket_items` answer shows the flat record the service derived and scored;
/// sent back as a flat record it gets the same answer. Flat records and batches carry none.
#[tokio::test]
async fn issue18_a_basket_items_answer_carries_the_derived_basket_summary() {
    let s = state();
    let items = json!({"basket_items": {"P1001": {"product_id": "P1001", "quantity": 2, "price": 10.99, "category": "grocery"}, "P2002": {"product_id": "P2002", "quantity": 1, "price": 25.50, "category": "electronics"}}, "STORE_REGION": "LONDON", "STORE_FORMAT": "LS"});
    let (status, body) = predict(&s, items.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let summary = &body["basket_summary"];
    let spend = summary["SPEND"].as_f64().expect("SPEND");
    assert!((spend - 47.48).abs() < 1e-9, "2 × 10.99 + 25.50: {summary}");
    assert_eq!(summary["QUANTITY"], json!(3.0));
    let categories = ["PROD_CODE_20", "PROD_CODE_30", "BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT"];
    let shown: Vec<&str> = categories.iter().map(|c| summary[c].as_str().expect("category")).collect();
    assert_eq!(shown, ["GENERAL", "ELECTRONICS", "M", "MIXED", "LONDON", "LS"], "{summary}");
    let (status, flat) = predict(&s, summary.clone()).await;
    assert_eq!(status, StatusCode::OK, "{flat}");
    assert_eq!(flat["probabilities"], body["probabilities"], "the summary scores as the items did");
    assert!(flat.get("basket_summary").is_none(), "a flat record has no summary: {flat}");
    let batch = json!({"records": [items]}).to_string();
    let (status, batch) = call(&s, "POST", "/predict/batch", Some("application/json"), batch).await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    assert!(batch["predictions"][0].get("basket_summary").is_none(), "batch answers carry none: {batch}");
    let spec = serde_json::to_value(retail_server::openapi()).expect("json");
    let documented = &spec["components"]["schemas"]["PredictionResponse"]["properties"]["basket_summary"];
    assert!(!documented.is_null(), "basket_summary is in the OpenAPI schema");
    let fields = spec["components"]["schemas"]["BasketSummary"]["properties"].as_object().expect("BasketSummary");
    let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = ["SPEND", "QUANTITY"].into_iter().chain(categories).collect::<Vec<_>>();
    expected.sort_unstable();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn unknown_categories_are_scored_and_warned() {
    let s = state();
    let mut record = seed();
    record["STORE_REGION"] = json!("MARS");
    let (status, body) = predict(&s, record).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["warnings"], json!(["STORE_REGION: unknown value \"MARS\"; scored as unseen"]));
}

#[tokio::test]
async fn invalid_fields_are_all_listed() {
    let s = state();
    let (status, body) = predict(&s, json!({"SPEND": "x", "QUANTITY": -1, "BASKET_SIZE": 3})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_input");
    let f = fields(&body);
    for expected in ["SPEND", "QUANTITY", "BASKET_SIZE", "PROD_CODE_20", "STORE_FORMAT"] {
        assert!(f.contains(&expected.to_owned()), "{expected} in {f:?}");
    }
    let mut record = seed();
    record["SPEND"] = json!(-3);
    record["QUANTITY"] = json!(1e9);
    let (status, body) = predict(&s, record).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["SPEND", "QUANTITY"]);
    assert!(body["details"][0]["reason"].as_str().expect("reason").contains("-3"));
    let (status, body) = predict(&s, json!({"basket_items": {}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["basket_items"]);
    let (status, body) = predict(&s, json!({"basket_items": {"a": {"quantity": 0, "price": "one"}, "b": 7}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&body), ["basket_items.a.price", "basket_items.b", "basket_items.a.quantity"]);
    let (status, _) = predict(&s, json!([1, 2])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn protocol_errors_have_json_bodies() {
    let s = state();
    let (status, body) = call(&s, "POST", "/predict", Some("application/json"), "{").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("malformed_json")));
    let (status, body) = call(&s, "POST", "/predict", Some("text/plain"), seed().to_string()).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type")));
    let (status, body) = call(&s, "POST", "/predict", Some("application/json"), vec![b' '; 2 * 1024 * 1024]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (status, body) = call(&s, "GET", "/nope", None, "").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, body) = call(&s, "DELETE", "/predict", None, "").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
}

#[tokio::test]
async fn health_readiness_and_model_endpoints() {
    let s = state();
    for path in ["/health", "/healthz"] {
        let (status, body) = call(&s, "GET", path, None, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "healthy");
        assert!(body["timestamp"].as_str().expect("timestamp").ends_with('Z'));
    }
    assert_eq!(call(&s, "GET", "/ready", None, "").await.0, StatusCode::OK);
    for path in ["/model/info", "/model-info"] {
        let (status, body) = call(&s, "GET", path, None, "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["source"], "embedded");
        assert_eq!(body["classes"].as_array().expect("classes").len(), 3);
        assert_eq!(body["input_schema"]["features"].as_array().expect("features").len(), 9);
        assert_eq!(body["model_format"]["kind"], "native");
    }
    let (status, body) = call(&s, "GET", "/model/metrics", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["metrics"]["accuracy"].as_f64().expect("accuracy") > 0.6);
    s.start_draining();
    let (status, body) = call(&s, "GET", "/ready", None, "").await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("not_ready")));
}

#[tokio::test]
async fn batch_answers_in_order_and_lists_bad_records() {
    let s = state();
    let mut cheap = seed();
    cheap["SPEND"] = json!(3.0);
    let body = json!({"records": [seed(), {"basket_items": {"a": {"quantity": 1, "price": 2.0, "category": "fresh"}}}, cheap]});
    for path in ["/predict/batch", "/batch-predict"] {
        let (status, answer) = call(&s, "POST", path, Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let predictions = answer["predictions"].as_array().expect("predictions");
        assert_eq!(predictions.len(), 3);
        assert!(predictions.iter().all(|p| p.get("request_id").is_none()));
        let (_, single) = predict(&s, seed()).await;
        assert_eq!(predictions[0]["probabilities"], single["probabilities"]);
        assert_eq!(answer["model_version"], s.serving().expect("model").artifact.manifest.version.as_str());
    }
    let bad = json!({"records": [seed(), {"SPEND": -1}, {"basket_items": {}}]});
    let (status, answer) = call(&s, "POST", "/predict/batch", Some("application/json"), bad.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let f = fields(&answer);
    assert!(f.contains(&"records[1].SPEND".to_owned()) && f.contains(&"records[2].basket_items".to_owned()), "{f:?}");
    assert!(!f.iter().any(|f| f.starts_with("records[0]")));
    for body in [json!({"records": []}), json!({"rows": []}), json!({"records": {}})] {
        let (status, answer) = call(&s, "POST", "/predict/batch", Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&answer), ["records"]);
    }
    let small = state_with(ServerConfig { max_batch_rows: 2, ..ServerConfig::default() });
    let (status, answer) = call(&small, "POST", "/predict/batch", Some("application/json"), body.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer["details"][0]["reason"].as_str().expect("reason").contains("1 to 2"));
    // A batch body may exceed the single-prediction limit.
    let many = json!({"records": vec![seed(); 8000]});
    assert!(many.to_string().len() > ServerConfig::default().max_body_bytes);
    let (status, answer) = call(&s, "POST", "/predict/batch", Some("application/json"), many.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["predictions"].as_array().expect("predictions").len(), 8000);
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated_and_in_error_bodies() {
    let s = state();
    let request = Request::post("/predict")
        .header("content-type", "application/json")
        .header("x-request-id", "abc-123")
        .body(Body::from(seed().to_string()))
        .expect("request");
    let (status, headers, body) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-request-id"], "abc-123");
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["request_id"], "abc-123");
    let request =
        Request::post("/predict").header("content-type", "application/json").body(Body::from("{")).expect("request");
    let (status, headers, body) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let generated = headers["x-request-id"].to_str().expect("id").to_owned();
    assert_eq!(generated.len(), 32);
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["request_id"], generated.as_str());
    let (_, body) = call(&s, "GET", "/nope", None, "").await;
    assert!(body["request_id"].is_string(), "404 bodies carry the id too");
}

#[tokio::test]
async fn over_the_concurrency_limit_is_429_with_retry_after() {
    let s = state_with(ServerConfig { max_concurrent_requests: 1, ..ServerConfig::default() });
    // Hold the only permit while a request arrives.
    let app = router(s.clone());
    let slow = Request::post("/predict/batch")
        .header("content-type", "application/json")
        .body(Body::from(json!({"records": vec![seed(); 9000]}).to_string()))
        .expect("request");
    let first = tokio::spawn(app.clone().oneshot(slow));
    let mut saw_429 = false;
    for _ in 0..200 {
        let request = Request::post("/predict")
            .header("content-type", "application/json")
            .body(Body::from(seed().to_string()))
            .expect("request");
        let response = app.clone().oneshot(request).await.expect("response");
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
            saw_429 = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(first.await.expect("join").expect("response").status(), StatusCode::OK);
    assert!(saw_429, "a second request while the only permit is held gets 429");
    // Health is never limited.
    assert_eq!(call(&s, "GET", "/health", None, "").await.0, StatusCode::OK);
}

#[tokio::test]
async fn version_metrics_openapi_and_docs() {
    let s = state();
    let (status, body) = call(&s, "GET", "/version", None, "").await;
    assert_eq!(status, StatusCode::OK);
    for key in ["version", "git_commit", "git_branch", "build_date"] {
        assert!(body[key].is_string(), "{key}");
    }
    predict(&s, seed()).await;
    let mut record = seed();
    record["STORE_REGION"] = json!("MARS");
    predict(&s, record).await;
    let request = Request::get("/metrics").body(Body::empty()).expect("request");
    let (status, headers, body) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().expect("ct").starts_with("text/plain"));
    let text = String::from_utf8(body).expect("utf8");
    for needle in [
        "retail_api_requests_total{",
        "route=\"/predict\"",
        "retail_api_request_duration_seconds_bucket{",
        "retail_api_requests_in_flight",
        "retail_api_predictions_total{",
        "retail_api_unseen_categories_total{model=\"retail-price-sensitivity\",field=\"STORE_REGION\"}",
        "retail_api_model_info{",
        "retail_api_build_info{",
    ] {
        assert!(text.contains(needle), "{needle} in metrics:\n{text}");
    }
    let (status, spec) = call(&s, "GET", "/openapi.json", None, "").await;
    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().expect("paths");
    for path in [
        "/predict",
        "/predict/batch",
        "/batch-predict",
        "/health",
        "/healthz",
        "/ready",
        "/model/info",
        "/model-info",
        "/model/metrics",
        "/metrics",
        "/version",
        "/models",
        "/models/{name}/predict",
        "/models/{name}/predict/batch",
        "/models/{name}/info",
        "/models/{name}/metrics",
        "/models/{name}/ready",
        "/model/drift",
        "/models/{name}/drift",
        "/model/card",
        "/models/{name}/card",
    ] {
        assert!(paths.contains_key(path), "{path} documented");
    }
    let request = Request::get("/docs/").body(Body::empty()).expect("request");
    let (status, _, body) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("swagger"), "Swagger UI served by the binary");
    let (status, _, _) =
        call_full(&s, Request::get("/docs/swagger-ui.css").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK, "assets served locally");
}

#[test]
fn committed_openapi_document_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let current = retail_server::openapi().to_pretty_json().expect("json");
    assert!(
        committed.trim_end() == current.trim_end(),
        "docs/openapi.json is stale: run `retail-api openapi > docs/openapi.json`"
    );
}

fn v2_inputs(rows: &[Value]) -> Value {
    let column = |name: &str, datatype: &str| json!({"name": name, "shape": [rows.len()], "datatype": datatype, "data": rows.iter().map(|r| r[name].clone()).collect::<Vec<_>>()});
    json!({"id": "req-1", "inputs": [
        column("BASKET_SIZE", "BYTES"), column("BASKET_TYPE", "BYTES"), column("STORE_REGION", "BYTES"), column("STORE_FORMAT", "BYTES"),
        column("SPEND", "FP64"), column("QUANTITY", "FP64"), column("PROD_CODE_20", "BYTES"), column("PROD_CODE_30", "BYTES"),
    ]})
}

#[tokio::test]
async fn open_inference_protocol_v2() {
    let s = state();
    let name = "retail-price-sensitivity";
    let version = s.serving().expect("model").artifact.manifest.version.clone();
    for path in [
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        &format!("/v2/models/{name}"),
        &format!("/v2/models/{name}/ready"),
        &format!("/v2/models/{name}/versions/{version}"),
        &format!("/v2/models/{name}/versions/{version}/ready"),
    ] {
        assert_eq!(call(&s, "GET", path, None, "").await.0, StatusCode::OK, "{path}");
    }
    let (_, meta) = call(&s, "GET", &format!("/v2/models/{name}"), None, "").await;
    assert_eq!(meta["inputs"].as_array().expect("inputs").len(), 8);
    let mut cheap = seed();
    cheap["SPEND"] = json!(3.0);
    let body = v2_inputs(&[seed(), cheap.clone()]).to_string();
    for path in [format!("/v2/models/{name}/infer"), format!("/v2/models/{name}/versions/{version}/infer")] {
        let (status, answer) = call(&s, "POST", &path, Some("application/json"), body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["id"], "req-1");
        assert_eq!(answer["model_version"], version.as_str());
        let outputs = answer["outputs"].as_array().expect("outputs");
        assert_eq!(outputs[0]["name"], "label");
        assert_eq!(outputs[0]["shape"], json!([2]));
        assert_eq!(outputs[1]["name"], "probabilities");
        assert_eq!(outputs[1]["shape"], json!([2, 3]));
        let (_, single) = predict(&s, cheap.clone()).await;
        assert_eq!(outputs[0]["data"][1], single["prediction"]);
        assert_eq!(outputs[1]["data"][4], single["probabilities"]["MM"]);
    }
    // Only the requested output.
    let mut only = v2_inputs(&[seed()]);
    only["outputs"] = json!([{"name": "label"}]);
    let (_, answer) =
        call(&s, "POST", &format!("/v2/models/{name}/infer"), Some("application/json"), only.to_string()).await;
    assert_eq!(answer["outputs"].as_array().expect("outputs").len(), 1);
    // Errors are {"error": ...}.
    let mut missing = v2_inputs(&[seed()]);
    missing["inputs"].as_array_mut().expect("inputs").remove(4);
    let mut negative = seed();
    negative["SPEND"] = json!(-2);
    let mut wrong_type = v2_inputs(&[seed()]);
    wrong_type["inputs"][0]["datatype"] = json!("FP64");
    let mut bad_shape = v2_inputs(&[seed()]);
    bad_shape["inputs"][4]["shape"] = json!([3]);
    for (body, needle) in [
        (missing, "SPEND is missing"),
        (v2_inputs(&[negative]), "SPEND"),
        (wrong_type, "datatype"),
        (bad_shape, "shape"),
        (json!({"inputs": 3}), "inputs"),
    ] {
        let (status, answer) =
            call(&s, "POST", &format!("/v2/models/{name}/infer"), Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(answer["error"].as_str().expect("error").contains(needle), "{needle}: {answer}");
    }
    let (status, answer) = call(&s, "POST", "/v2/models/other/infer", Some("application/json"), body.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(answer["error"].is_string());
    assert_eq!(
        call(&s, "GET", &format!("/v2/models/{name}/versions/0/ready"), None, "").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn sagemaker_ping_and_invocations() {
    let s = state();
    assert_eq!(call(&s, "GET", "/ping", None, "").await.0, StatusCode::OK);
    let csv = "BASKET_SIZE,BASKET_TYPE,STORE_REGION,STORE_FORMAT,SPEND,QUANTITY,PROD_CODE_20,PROD_CODE_30\nM,MIXED,LONDON,LS,125.50,3,FOOD,FRESH\nS,FRESH,WALES,SS,4.2,3,FOOD,DAIRY\n";
    let request =
        Request::post("/invocations").header("content-type", "text/csv").body(Body::from(csv)).expect("request");
    let (status, headers, body) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/csv");
    let text = String::from_utf8(body).expect("utf8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "prediction,P_LA,P_MM,P_UM");
    assert_eq!(lines.len(), 3);
    let (_, single) = predict(&s, seed()).await;
    assert!(lines[1].starts_with(single["prediction"].as_str().expect("prediction")));
    // Without a header, and answered as JSON when asked.
    let request = Request::post("/invocations")
        .header("content-type", "text/csv")
        .header("accept", "application/json")
        .body(Body::from("M,MIXED,LONDON,LS,125.50,3,FOOD,FRESH"))
        .expect("request");
    let (status, _, body) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::OK);
    let answer: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(answer["predictions"][0]["probabilities"], single["probabilities"]);
    // JSON: batch shape, bare array, single record.
    for body in [json!({"records": [seed()]}), json!([seed()]), seed()] {
        let (status, answer) = call(&s, "POST", "/invocations", Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(answer["predictions"][0]["probabilities"], single["probabilities"]);
    }
    let (status, answer) =
        call(&s, "POST", "/invocations", Some("text/csv"), "M,MIXED,LONDON,LS,abc,3,FOOD,FRESH").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(fields(&answer), ["records[0].SPEND"]);
    let (status, answer) = call(&s, "POST", "/invocations", Some("text/csv"), "M,MIXED,LONDON").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(call(&s, "POST", "/invocations", Some("text/plain"), "x").await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    s.start_draining();
    assert_eq!(call(&s, "GET", "/ping", None, "").await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn metrics_pass_promtool_check() {
    let s = state();
    predict(&s, seed()).await;
    call(&s, "POST", "/predict", Some("application/json"), "{").await;
    let (_, _, body) = call_full(&s, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is needed (scripts/test.sh installs Debian's prometheus package)");
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(&body).expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_slow_request_times_out_with_503() {
    let s =
        state_with(ServerConfig { request_timeout: std::time::Duration::from_millis(1), ..ServerConfig::default() });
    let body = json!({"records": vec![seed(); 9000]}).to_string();
    let (status, answer) = call(&s, "POST", "/predict/batch", Some("application/json"), body).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer["code"], "timeout");
}

/// A tiny deterministic generator for the random-input test.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn value(&mut self, depth: usize) -> Value {
        let strings =
            ["M", "MIXED", "LONDON", "LS", "FOOD", "FRESH", "", " ", "XX", "ß∂ƒ©", "\u{0}", "1e309", "NaN", "-1"];
        let numbers = [0.0, -0.0, -1.0, 1.0, 3.0, 125.5, 1e9, -1e300, 1e300, f64::MIN_POSITIVE, 0.5];
        match self.below(if depth > 2 { 4 } else { 7 }) {
            0 => json!(strings[self.below(strings.len())]),
            1 => json!(numbers[self.below(numbers.len())]),
            2 => json!(self.next().is_multiple_of(2)),
            3 => Value::Null,
            4 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            5 => "x".repeat(self.below(5000)).into(),
            _ => {
                let keys = [
                    "SPEND",
                    "QUANTITY",
                    "BASKET_SIZE",
                    "BASKET_TYPE",
                    "STORE_REGION",
                    "STORE_FORMAT",
                    "PROD_CODE_20",
                    "PROD_CODE_30",
                    "basket_items",
                    "records",
                    "quantity",
                    "price",
                    "category",
                    "inputs",
                    "name",
                    "data",
                    "shape",
                    "datatype",
                ];
                Value::Object(
                    (0..self.below(10))
                        .map(|_| (keys[self.below(keys.len())].to_owned(), self.value(depth + 1)))
                        .collect(),
                )
            }
        }
    }
}

#[tokio::test]
async fn random_bodies_never_cause_a_server_error() {
    let s = state();
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let paths = ["/predict", "/predict/batch", "/v2/models/retail-price-sensitivity/infer", "/invocations"];
    for i in 0..3000 {
        let mut body = rng.value(0);
        // Half of the time start from a valid record and break one field.
        if i % 2 == 0 {
            let mut record = seed();
            let keys = ["SPEND", "QUANTITY", "BASKET_SIZE", "PROD_CODE_30", "basket_items"];
            record[keys[rng.below(keys.len())]] = rng.value(1);
            body = if i % 4 == 0 { json!({"records": [record]}) } else { record };
        }
        let path = paths[rng.below(paths.len())];
        let (status, answer) = call(&s, "POST", path, Some("application/json"), body.to_string()).await;
        assert!(status.is_success() || status.is_client_error(), "{path} {body} -> {status} {answer}");
        if status.is_client_error() {
            assert!(answer["error"].is_string(), "{path} {body} -> {answer}");
        }
    }
}

/// The request examples the OpenAPI document shows are answered 200: the documented shapes and
/// the parser agree.
#[tokio::test]
async fn documented_request_examples_are_accepted() {
    let spec = serde_json::to_value(retail_server::openapi()).expect("spec");
    let example = |schema: &str| spec["components"]["schemas"][schema]["example"].clone();
    let state = state();
    for schema in ["PredictRequest", "FlatRecord", "BasketItemsRequest"] {
        let body = example(schema);
        assert!(body.is_object(), "{schema} has an example");
        let (status, answer) = predict(&state, body).await;
        assert_eq!(status, StatusCode::OK, "{schema}: {answer}");
        assert!(answer["probabilities"].is_object(), "{schema}: {answer}");
    }
    let batch = example("BatchRequest");
    let (status, answer) = call(&state, "POST", "/predict/batch", Some("application/json"), batch.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["predictions"].as_array().map(Vec::len), batch["records"].as_array().map(Vec::len));
    for (path, content_type) in [("/v2/models/{name}/infer", "application/json"), ("/invocations", "text/csv")] {
        let body = &spec["paths"][path]["post"]["requestBody"]["content"][content_type]["example"];
        let body = match body {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let uri = path.replace("{name}", "retail-price-sensitivity");
        let (status, _, answer) = call_full(
            &state,
            Request::builder()
                .method("POST")
                .uri(&uri)
                .header("content-type", content_type)
                .body(Body::from(body))
                .expect("request"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}: {}", String::from_utf8_lossy(&answer));
    }
}
