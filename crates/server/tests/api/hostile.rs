//! Hostile inputs through the router: v2 shapes with checked arithmetic, v2 requires JSON, a
//! 422 lists a bounded number of fields, warnings quote a short escaped prefix.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{call, predict, seed, state, state_with, v2_inputs};

const INFER: &str = "/v2/models/retail-price-sensitivity/infer";

/// Sets every input tensor's shape.
fn with_shape(mut request: Value, shape: &Value) -> Value {
    for tensor in request["inputs"].as_array_mut().expect("inputs") {
        tensor["shape"] = shape.clone();
    }
    request
}

#[tokio::test]
async fn v2_shapes_are_checked_without_overflow() {
    let s = state();
    let one = v2_inputs(&[seed()]);
    for (shape, needle) in [
        (json!([u64::MAX, u64::MAX]), "overflows"),
        (json!([4_294_967_296_u64, 4_294_967_296_u64]), "overflows"),
        (json!([-1]), "non-negative integers"),
        (json!([-1, -1]), "non-negative integers"),
        (json!([0.5, 2]), "non-negative integers"),
        (json!(["1"]), "non-negative integers"),
        (json!([2]), "does not match 1 data elements"),
        (json!([1, 0]), "does not match 1 data elements"),
    ] {
        let body = with_shape(one.clone(), &shape).to_string();
        let (status, answer) = call(&s, "POST", INFER, Some("application/json"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "shape {shape}: {answer}");
        let error = answer["error"].as_str().expect("error");
        assert!(error.contains("shape") && error.contains(needle), "shape {shape}: {error}");
    }
    for shape in [json!([1]), json!([1, 1]), json!([1, 1, 1])] {
        let body = with_shape(one.clone(), &shape).to_string();
        let (status, answer) = call(&s, "POST", INFER, Some("application/json"), body).await;
        assert_eq!(status, StatusCode::OK, "shape {shape}: {answer}");
    }
}

#[tokio::test]
async fn v2_infer_requires_json() {
    let s = state();
    let body = v2_inputs(&[seed()]).to_string();
    let version = s.serving().expect("model").artifact.manifest.version.clone();
    let versioned = format!("/v2/models/retail-price-sensitivity/versions/{version}/infer");
    for path in [INFER, versioned.as_str()] {
        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
            let (status, answer) = call(&s, "POST", path, content_type, body.clone()).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path} {content_type:?}: {answer}");
            assert!(answer["error"].as_str().expect("error").contains("application/json"), "{answer}");
        }
        let (status, _) = call(&s, "POST", path, Some("application/json; charset=utf-8"), body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn v2_rows_past_the_limit_are_refused() {
    let s = state_with(retail_server::ServerConfig { max_batch_rows: 2, ..retail_server::ServerConfig::default() });
    let body = v2_inputs(&[seed(), seed(), seed()]).to_string();
    let (status, answer) = call(&s, "POST", INFER, Some("application/json"), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["error"].as_str().expect("error").contains("2"), "{answer}");
}

#[tokio::test]
async fn a_422_lists_a_bounded_number_of_fields() {
    let s = state();
    let body = json!({"records": vec![json!({}); 10_000]}).to_string();
    let (status, answer) = call(&s, "POST", "/predict/batch", Some("application/json"), body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let details = answer["details"].as_array().expect("details");
    assert!(details.len() <= 101, "{} details listed", details.len());
    assert_eq!(details[0]["field"], "records[0].SPEND");
}

#[tokio::test]
async fn long_unknown_values_are_warned_by_a_short_escaped_prefix() {
    let s = state();
    let mut record = seed();
    record["STORE_REGION"] = json!(format!("\"\u{85}{}", "MARS".repeat(10_000)));
    let (status, body) = predict(&s, record.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let warning = body["warnings"][0].as_str().expect("warning");
    assert!(warning.len() < 120, "{warning:.200}");
    assert!(warning.starts_with(r#"STORE_REGION: unknown value "\"\u{85}MARSMARS"#), "{warning}");
    assert!(warning.ends_with("\"…; scored as unseen"), "{warning}");
    let batch = json!({"records": [record]}).to_string();
    let (status, answer) = call(&s, "POST", "/predict/batch", Some("application/json"), batch).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["predictions"][0]["warnings"][0], warning);
}
