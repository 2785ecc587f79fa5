//! The API's one error type. Every variant maps to a status and a stable snake_case code in an
//! exhaustive match; the body is `{"error", "code", "details"?, "total_errors"?, "request_id"}`.
//! A handler's error leaves its response as a [`PendingError`] extension and the edge's
//! [`ErrorBodies`] hook writes the body once, with the request id — never by re-reading a body.
//! 5xx details are logged, not returned.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use retail_model::features::FieldError;
use serde::Serialize;

use crate::scoring::FieldErrors;

/// Every way a request can fail.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON.
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is not declared as JSON.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// Fields are missing or invalid: the first ones listed, all counted.
    #[error("request has invalid fields")]
    Invalid(FieldErrors),
    /// No route has this path.
    #[error("no route for {0}")]
    NotFound(String),
    /// No model is configured under this name (the name, the configured names).
    #[error("model {0:?} not found; this server serves: {1}")]
    UnknownModel(String, String),
    /// `/predict-single` without `?model=` and no tabular model served (the configured names).
    #[error("no tabular model is served (this server serves: {0}); /predict-single scores tabular models")]
    NoTabularModel(String),
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body exceeds the limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive in time.
    #[error("request body not received within {0} ms")]
    BodyTimeout(u128),
    /// The body could not be read (the client broke the transfer).
    #[error("request body could not be read: {0}")]
    BodyRead(String),
    /// Too many requests in flight.
    #[error("server is at its limit of {0} concurrent requests; retry shortly")]
    Overloaded(usize),
    /// The request took longer than allowed.
    #[error("request took longer than {0} ms")]
    Timeout(u128),
    /// No valid credential on a protected route (401).
    #[error("{}", .0.message())]
    Unauthorized(crate::auth::Failure),
    /// The credential lacks the scope the route needs (403).
    #[error("the credential lacks the scope {0}")]
    InsufficientScope(crate::auth::Scope),
    /// The server is shutting down or has no model.
    #[error("not ready: {0}")]
    NotReady(&'static str),
    /// An explanation or the global importance was asked of a model whose artifact has none
    /// (no node covers in `explain.json`): why.
    #[error("{0}")]
    ExplanationUnavailable(String),
    /// `/model/card` of a model whose artifact has no model card (the model's name).
    #[error("model {0:?} has no model card: its artifact has no card.md")]
    NoCard(String),
    /// A bug or an unexpected failure; the cause is logged.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    /// The stable snake_case code in the body.
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    /// What happened, in a few words (the OpenAPI document's response descriptions).
    pub fn summary(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "the body is not valid JSON",
            Self::UnsupportedMediaType => "the content type is not one this route reads",
            Self::Invalid(_) => "fields are missing or invalid: each listed (also as FastAPI's `detail`)",
            Self::NotFound(_) => "no such route",
            Self::UnknownModel(..) => "no model is configured under this name",
            Self::NoTabularModel(_) => "no tabular model is served",
            Self::MethodNotAllowed => "the route does not take this method",
            Self::PayloadTooLarge(_) => "the body is larger than the route's limit",
            Self::BodyTimeout(_) => "the body did not arrive within BODY_READ_TIMEOUT_SECONDS",
            Self::BodyRead(_) => "the body could not be read (the client broke the transfer)",
            Self::Overloaded(_) => "too many requests in flight; retry after the Retry-After seconds",
            Self::Timeout(_) => "the request took longer than REQUEST_TIMEOUT_MS",
            Self::Unauthorized(_) => "no valid credential (Bearer token or X-API-Key)",
            Self::InsufficientScope(_) => "the credential lacks the scope this route needs",
            Self::NotReady(_) => "no model loaded yet, or shutting down",
            Self::ExplanationUnavailable(_) => {
                "the model cannot explain: its artifact has no explain.json (retrain or re-import it)"
            }
            Self::NoCard(_) => "the model's artifact has no model card (card.md)",
            Self::Internal(_) => "an unexpected failure (logged)",
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::MalformedJson(_) => (StatusCode::BAD_REQUEST, "malformed_json"),
            Self::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Self::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::UnknownModel(..) => (StatusCode::NOT_FOUND, "model_not_found"),
            Self::NoTabularModel(_) => (StatusCode::NOT_FOUND, "no_tabular_model"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            Self::BodyRead(_) => (StatusCode::BAD_REQUEST, "body_read"),
            Self::Overloaded(_) => (StatusCode::TOO_MANY_REQUESTS, "overloaded"),
            Self::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InsufficientScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            Self::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Self::ExplanationUnavailable(_) => (StatusCode::CONFLICT, "explanation_unavailable"),
            Self::NoCard(_) => (StatusCode::NOT_FOUND, "card_not_found"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

/// An error answer whose JSON body is written by [`render`], once the request id is known.
#[derive(Debug, Clone)]
pub enum PendingError {
    /// The API's error shape.
    Api(Arc<ApiError>),
    /// A protocol's own shape, `{"error": "..."}` (inference protocol v2).
    Protocol(Arc<str>),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if let Self::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let mut response = status.into_response();
        if matches!(self, Self::Overloaded(_) | Self::Timeout(_) | Self::NotReady(_)) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, Self::BodyTimeout(_) | Self::BodyRead(_)) {
            // The rest of the body may still be on its way: do not read it as the next request.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(challenge) = crate::auth::challenge(&self) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        response.extensions_mut().insert(PendingError::Api(Arc::new(self)));
        response
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    details: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    total_errors: Option<usize>,
    /// The listed errors again, in FastAPI's shape, for callers written against FastAPI.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    detail: Vec<Detail<'a>>,
    request_id: &'a str,
}

/// One invalid field as FastAPI writes it: `{"loc": ["body", "records", 3, "SPEND"], "msg", "type"}`.
#[derive(Serialize)]
struct Detail<'a> {
    loc: Vec<Loc<'a>>,
    msg: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Loc<'a> {
    Key(&'a str),
    Index(usize),
}

impl<'a> Detail<'a> {
    /// `records[3].basket_items.P1.price` → `["body", "records", 3, "basket_items", "P1", "price"]`.
    fn of(error: &'a FieldError) -> Self {
        let mut loc = vec![Loc::Key("body")];
        for part in error.field.split('.') {
            let mut pieces = part.split('[');
            if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
                loc.push(Loc::Key(key));
            }
            for index in pieces {
                let index = index.trim_end_matches(']');
                loc.push(index.parse().map_or(Loc::Key(index), Loc::Index));
            }
        }
        let kind = if error.reason == "is required" { "missing" } else { "value_error" };
        Self { loc, msg: &error.reason, kind }
    }
}

impl PendingError {
    /// The JSON body, naming `request_id`.
    pub(crate) fn to_json(&self, request_id: &str) -> Vec<u8> {
        let body = match self {
            Self::Api(error) => {
                let (_, code) = error.status_and_code();
                let (details, total) = match error.as_ref() {
                    ApiError::Invalid(errors) => (errors.listed(), Some(errors.total())),
                    _ => (&[][..], None),
                };
                let detail = details.iter().map(Detail::of).collect();
                Body { error: error.to_string(), code: Some(code), details, total_errors: total, detail, request_id }
            }
            Self::Protocol(message) => Body {
                error: message.to_string(),
                code: None,
                details: &[],
                total_errors: None,
                detail: Vec::new(),
                request_id,
            },
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// The edge hook that writes error bodies with the request's id.
#[derive(Debug, Clone, Copy)]
pub struct ErrorBodies;

impl crate::edge::hook::Hook for ErrorBodies {
    type Seen = Option<tower_http::request_id::RequestId>;

    fn before(&self, request: &mut Request) -> Self::Seen {
        request.extensions().get().cloned()
    }

    fn after(&self, id: Self::Seen, response: &mut Response) {
        if let Some(pending) = response.extensions_mut().remove::<PendingError>() {
            let body = pending.to_json(crate::edge::request_id::id_of(id.as_ref()));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.remove(header::CONTENT_LENGTH);
            *response.body_mut() = axum::body::Body::from(body);
        }
    }
}
