//! The HTTP floor of the throughput benchmark: one route that parses the seed `/predict` body
//! into a typed record and answers a constant prediction of the same size. No middleware, no
//! model: what any axum service pays for HTTP and JSON alone. Served by `retail-bench-floor`
//! (scripts/bench-http.sh) and measured in process by the server's router benchmark.

use std::borrow::Cow;

use axum::Json;
use axum::body::Bytes;
use axum::http::{HeaderName, header};
use axum::routing::{get, post};

/// The seed's flat record, borrowed from the body like the server's fast path.
#[derive(serde::Deserialize)]
#[allow(non_snake_case, dead_code)]
struct Record<'a> {
    SPEND: f64,
    QUANTITY: f64,
    #[serde(borrow)]
    PROD_CODE_20: Cow<'a, str>,
    #[serde(borrow)]
    PROD_CODE_30: Cow<'a, str>,
    #[serde(borrow)]
    BASKET_SIZE: Cow<'a, str>,
    #[serde(borrow)]
    BASKET_TYPE: Cow<'a, str>,
    #[serde(borrow)]
    STORE_REGION: Cow<'a, str>,
    #[serde(borrow)]
    STORE_FORMAT: Cow<'a, str>,
}

const ANSWER: &str = r#"{"prediction":"UM","label":"Up Market","probabilities":{"LA":0.0006,"MM":0.0047,"UM":0.9947},"model_version":"5aaf7da9b37f","request_id":"00000000000000000000000000000000","warnings":[]}"#;

async fn predict(body: Bytes) -> Result<([(HeaderName, &'static str); 1], &'static str), String> {
    let record: Record<'_> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    std::hint::black_box(&record);
    Ok(([(header::CONTENT_TYPE, "application/json")], ANSWER))
}

/// `POST /predict` and `GET /health`.
pub fn app() -> axum::Router {
    axum::Router::new().route("/predict", post(predict)).route("/health", get(|| async { Json("ok") }))
}
