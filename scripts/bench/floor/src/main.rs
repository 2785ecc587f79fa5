//! The HTTP floor of the throughput benchmark: axum's own server, one route that parses the
//! seed `/predict` body into a typed record and answers a constant prediction of the same size.
//! No middleware, no model: what any axum service pays for HTTP and JSON alone.
//!
//! `retail-bench-floor PORT`

use std::borrow::Cow;

use axum::Json;
use axum::routing::post;

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

async fn predict(
    body: axum::body::Bytes,
) -> Result<([(axum::http::HeaderName, &'static str); 1], &'static str), String> {
    let record: Record<'_> = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    std::hint::black_box(&record);
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], ANSWER))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8001".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    let app = axum::Router::new()
        .route("/predict", post(predict))
        .route("/health", axum::routing::get(|| async { Json("ok") }));
    axum::serve(listener, app).await
}
