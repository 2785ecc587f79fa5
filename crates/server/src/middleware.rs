//! The middleware every request passes: a request id (accepted from `x-request-id` or generated,
//! echoed back and added to JSON error bodies), one tracing span with the matched route,
//! Prometheus request metrics, a `server-timing` header, and for scoring routes a concurrency
//! limit (429) and a timeout.
//! Request bodies are never logged.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::{ApiError, AppState, metrics};

/// The request's id, for handlers that put it in their answer.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Routes that score baskets: limited in concurrency and time.
const SCORING_ROUTES: [&str; 6] = [
    "/predict",
    "/predict/batch",
    "/batch-predict",
    "/invocations",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
];

/// A fresh, unpredictable id: a per-process random key hashed with a counter (128 bits of hex).
fn new_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<(RandomState, RandomState)> = std::sync::OnceLock::new();
    let (a, b) = KEYS.get_or_init(|| (RandomState::new(), RandomState::new()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hash = |keys: &RandomState| {
        let mut h = keys.build_hasher();
        h.write_u64(n);
        h.finish()
    };
    format!("{:016x}{:016x}", hash(a), hash(b))
}

/// A caller's id is kept when it is short and plain (so it is safe in logs and headers).
fn accepted_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let plain = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    plain.then(|| s.to_owned())
}

/// The middleware.
pub async fn observe(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let id = request.headers().get("x-request-id").and_then(accepted_id).unwrap_or_else(new_request_id);
    request.extensions_mut().insert(RequestId(id.clone()));
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().as_str().to_owned();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let start = Instant::now();
    metrics::in_flight(1.0);
    let mut response = async {
        if SCORING_ROUTES.contains(&route.as_str()) {
            limited(&state, request, next).await
        } else {
            next.run(request).await
        }
    }
    .instrument(span.clone())
    .await;
    metrics::in_flight(-1.0);
    let status = response.status();
    let seconds = start.elapsed().as_secs_f64();
    metrics::record_request(&route, &method, status.as_u16(), seconds);
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), ms = seconds * 1e3, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), ms = seconds * 1e3, "request");
        }
    });
    if status.is_client_error() || status.is_server_error() {
        response = with_request_id(response, &id).await;
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    // Time from the request head to the finished answer (body read, scored, serialised).
    if let Ok(value) = HeaderValue::from_str(&format!("app;dur={:.3}", seconds * 1e3)) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// Runs a scoring request under the concurrency limit and the timeout.
async fn limited(state: &AppState, request: Request, next: Next) -> Response {
    let Ok(_permit) = state.permits.try_acquire() else {
        return ApiError::Overloaded(state.config.max_concurrent_requests).into_response();
    };
    match tokio::time::timeout(state.config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(state.config.request_timeout.as_millis()).into_response(),
    }
}

/// Adds `"request_id"` to a JSON error body.
async fn with_request_id(response: Response, id: &str) -> Response {
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return ApiError::Internal("error body unreadable".to_owned()).into_response();
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut object)) => {
            object.insert("request_id".to_owned(), serde_json::Value::from(id));
            serde_json::to_vec(&object).unwrap_or_else(|_| bytes.to_vec())
        }
        _ => bytes.to_vec(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_and_callers_ids_are_checked() {
        let a = new_request_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_request_id());
        assert_eq!(accepted_id(&HeaderValue::from_static("abc-123_x.y:z")).as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(accepted_id(&HeaderValue::from_static("bad id")), None);
        assert_eq!(accepted_id(&HeaderValue::from_str(&"x".repeat(129)).expect("header")), None);
    }
}
