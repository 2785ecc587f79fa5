//! The API's one error type. Every variant maps to a status and a stable snake_case code in an
//! exhaustive match; the body is `{"error", "code", "details"?, "request_id"}` (the request id is
//! added by the observing middleware). 5xx details are logged, not returned.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use retail_model::features::FieldError;
use serde::Serialize;

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is not declared as JSON.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// Fields are missing or invalid; each is listed.
    #[error("request has invalid fields")]
    Invalid(Vec<FieldError>),
    /// No route has this path.
    #[error("no route for {0}")]
    NotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body exceeds the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Too many requests in flight.
    #[error("server is at its limit of {0} concurrent requests; retry shortly")]
    Overloaded(usize),
    /// The request took longer than allowed.
    #[error("request took longer than {0} ms")]
    Timeout(u128),
    /// The server is shutting down or has no model.
    #[error("not ready: {0}")]
    NotReady(&'static str),
    /// A bug or an unexpected failure; the cause is logged.
    #[error("internal error")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: String,
    code: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    details: &'a [FieldError],
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Overloaded(_) => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
            Self::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let details = match &self {
            Self::Invalid(details) => details.as_slice(),
            _ => &[],
        };
        let mut response = (status, Json(Body { error: self.to_string(), code, details })).into_response();
        if matches!(self, Self::Overloaded(_) | Self::Timeout(_) | Self::NotReady(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
