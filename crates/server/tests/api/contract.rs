//! The contract FastAPI-era callers and browsers rely on: numeric strings, FastAPI's `detail`,
//! trailing slashes and HEAD, CORS, and a request schema that is the wire format.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;

use super::{call, call_full, predict, seed, state, state_with};

#[tokio::test]
async fn numeric_strings_are_numbers_as_in_pydantic_lax_mode() {
    let s = state();
    let (status, strict) = predict(&s, seed()).await;
    assert_eq!(status, StatusCode::OK);
    let mut lax = seed();
    lax["SPEND"] = json!("125.50");
    lax["QUANTITY"] = json!(" 3 ");
    let (status, body) = predict(&s, lax).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["probabilities"], strict["probabilities"]);
    for bad in ["NaN", "", "inf", "12abc"] {
        let mut record = seed();
        record["SPEND"] = json!(bad);
        let (status, body) = predict(&s, record).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad:?}: {body}");
    }
}

#[tokio::test]
async fn a_422_carries_fastapis_detail_beside_our_details() {
    let s = state();
    let mut record = seed();
    record["SPEND"] = json!(-3);
    record.as_object_mut().expect("object").remove("QUANTITY");
    let (status, body) = predict(&s, record).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "invalid_input");
    let detail = body["detail"].as_array().expect("detail");
    assert_eq!(detail.len(), body["details"].as_array().expect("details").len());
    assert!(
        detail.contains(&json!({"loc": ["body", "SPEND"], "msg": "must be >= 0, got -3", "type": "value_error"})),
        "{body}"
    );
    assert!(detail.contains(&json!({"loc": ["body", "QUANTITY"], "msg": "is required", "type": "missing"})), "{body}");
    let batch = json!({"records": [seed(), {"SPEND": 1}]}).to_string();
    let (_, body) = call(&s, "POST", "/predict/batch", Some("application/json"), batch).await;
    assert_eq!(body["detail"][0]["loc"], json!(["body", "records", 1, "QUANTITY"]), "{body}");
}

#[tokio::test]
async fn trailing_slashes_redirect_and_head_answers_like_get() {
    let s = state();
    let request = Request::post("/predict/?x=1").body(Body::empty()).expect("request");
    let (status, headers, _) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "307 keeps the method and body");
    assert_eq!(headers["location"], "/predict?x=1");
    let (status, headers, _) = call_full(&s, Request::get("//evil.example/").body(Body::empty()).expect("r")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no redirect to another host: {headers:?}");
    let (status, _, _) = call_full(&s, Request::get("/docs/").body(Body::empty()).expect("r")).await;
    assert_eq!(status, StatusCode::OK, "routes that end in a slash are served as they are");
    let (status, _, body) = call_full(&s, Request::head("/health").body(Body::empty()).expect("r")).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
}

#[tokio::test]
async fn cors_preflights_allow_only_the_configured_origins() {
    let preflight = |origin: &str| {
        Request::options("/predict")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,authorization")
            .body(Body::empty())
            .expect("request")
    };
    let s = state();
    let (_, headers, _) = call_full(&s, preflight("https://app.example.com")).await;
    assert!(headers.get("access-control-allow-origin").is_none(), "no CORS unless configured");
    let config = retail_server::ServerConfig {
        cors_allowed_origins: vec!["https://app.example.com".to_owned()],
        ..Default::default()
    };
    let s = state_with(config);
    let (status, headers, _) = call_full(&s, preflight("https://app.example.com")).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    assert!(headers["access-control-allow-methods"].to_str().expect("ascii").contains("POST"));
    assert!(headers["access-control-allow-headers"].to_str().expect("ascii").contains("authorization"));
    assert_eq!(headers["access-control-max-age"], "600");
    let (_, headers, _) = call_full(&s, preflight("https://evil.example.com")).await;
    assert!(headers.get("access-control-allow-origin").is_none(), "a refused origin gets no grant");
    let request = Request::post("/predict")
        .header("origin", "https://app.example.com")
        .header("content-type", "application/json")
        .body(Body::from(seed().to_string()))
        .expect("request");
    let (status, headers, _) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["access-control-allow-origin"], "https://app.example.com");
    assert!(headers["access-control-expose-headers"].to_str().expect("ascii").contains("x-request-id"));
}

#[tokio::test]
async fn the_published_request_schema_is_the_wire_format() {
    let spec = serde_json::to_value(retail_server::openapi()).expect("json");
    let request = &spec["components"]["schemas"]["PredictRequest"];
    let variants = request["oneOf"].as_array().expect("oneOf");
    let refs: Vec<&str> = variants.iter().filter_map(|v| v["$ref"].as_str()).collect();
    assert_eq!(refs, ["#/components/schemas/FlatRecord", "#/components/schemas/BasketItemsRequest"], "{request}");
    let mut ids: Vec<&str> = spec["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .filter_map(|operation| operation["operationId"].as_str())
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique");
    for (path, statuses) in
        [("/predict", &["400", "408", "413", "415", "422", "429", "503"][..]), ("/model/info", &["503"])]
    {
        let method = if path == "/predict" { "post" } else { "get" };
        let responses = &spec["paths"][path][method]["responses"];
        for status in statuses {
            let examples = &responses[*status]["content"]["application/json"]["examples"];
            assert!(examples.as_object().is_some_and(|e| !e.is_empty()), "{path} {status} has examples: {responses}");
        }
    }
}
