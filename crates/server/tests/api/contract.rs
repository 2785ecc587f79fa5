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
    let expected = ["FlatRecord", "BasketItemsRequest", "ForecastRequest", "TabularRequest"]
        .map(|s| format!("#/components/schemas/{s}"));
    assert_eq!(refs, expected, "{request}");
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
    for (path, statuses) in [
        ("/predict", &["400", "408", "413", "415", "422", "429", "503"][..]),
        ("/predict-single", &["400", "404", "415", "422", "503"]),
        ("/model/info", &["503"]),
    ] {
        let method = if path.starts_with("/predict") { "post" } else { "get" };
        let responses = &spec["paths"][path][method]["responses"];
        for status in statuses {
            let examples = &responses[*status]["content"]["application/json"]["examples"];
            assert!(examples.as_object().is_some_and(|e| !e.is_empty()), "{path} {status} has examples: {responses}");
        }
    }
}

#[tokio::test]
async fn inline_errors_score_the_valid_records_and_answer_each_invalid_one_in_place() {
    let s = state();
    let records = json!({"records": [seed(), {"SPEND": -1}, seed()]}).to_string();
    let (status, body) = call(&s, "POST", "/predict/batch", Some("application/json"), records.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "all-or-nothing stays the default: {body}");
    for path in ["/predict/batch?errors=inline", "/batch-predict?errors=inline", "/invocations?errors=inline"] {
        let (status, body) = call(&s, "POST", path, Some("application/json"), records.clone()).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["failed"], 1, "{path}: {body}");
        let items = body["predictions"].as_array().expect("predictions");
        assert!(items[0]["prediction"].is_string() && items[2]["prediction"].is_string(), "{body}");
        assert_eq!(items[1]["index"], 1);
        assert_eq!(items[1]["total_errors"], 8, "{body}");
        assert!(items[1]["details"].as_array().expect("details").iter().any(|d| d["field"] == "SPEND"), "{body}");
    }
    let in_body = json!({"records": [seed(), {"SPEND": -1}], "options": {"errors": "inline"}}).to_string();
    let (status, body) = call(&s, "POST", "/predict/batch", Some("application/json"), in_body).await;
    assert_eq!((status, body["failed"].clone()), (StatusCode::OK, json!(1)), "options.errors in the body: {body}");
    let (status, body) = call(&s, "POST", "/predict/batch?errors=maybe", Some("application/json"), records).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"][0]["field"], "errors", "{body}");
    let csv = "M,MIXED,LONDON,LS,125.50,3,FOOD,FRESH\nM,MIXED\nM,MIXED,LONDON,LS,-1,3,FOOD,FRESH\nL,MIXED,LONDON,LS,99,2,FOOD,FRESH\n";
    let request = Request::post("/invocations?errors=inline").header("content-type", "text/csv").body(Body::from(csv));
    let (status, _, body) = call_full(&s, request.expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "prediction,P_LA,P_MM,P_UM,error");
    assert!(lines[1].ends_with(',') && lines[4].ends_with(','), "scored rows have an empty error: {text}");
    assert!(lines[2].starts_with(",,,,\"row: has 2 columns"), "{text}");
    assert!(lines[3].starts_with(",,,,\"SPEND: must be >= 0"), "{text}");
    let request = Request::post("/invocations").header("content-type", "text/csv").body(Body::from(csv));
    let (status, _, _) = call_full(&s, request.expect("request")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "CSV is all-or-nothing by default");
}
