//! Admission of scoring requests, in this order: the body is read whole under its own read
//! timeout and a global budget of buffered bytes (so slow senders hold neither a scoring permit
//! nor unbounded memory), then a scoring permit is taken (429 when none is free), then the
//! request runs under the request timeout (503). The body is handed to the handler in memory.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tokio::sync::Semaphore;

use crate::{ApiError, AppState, metrics};

/// Bytes per permit of the buffered-body budget (permits are counted in KiB so that a budget of
/// gigabytes fits the semaphore's `u32` acquisitions).
const BUDGET_UNIT: usize = 1024;

/// The budget of request-body bytes held in memory at once, across all requests.
#[derive(Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
}

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self { units: Arc::new(Semaphore::new(bytes.div_ceil(BUDGET_UNIT))) }
    }
}

/// The route group's body limit, for [`admit`].
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Reads the body, then takes a scoring permit, then runs the request under the timeout.
pub async fn admit(
    State((state, BodyLimit(limit))): State<(Arc<AppState>, BodyLimit)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return ApiError::PayloadTooLarge(limit).into_response();
    }
    let config = &state.config;
    let (bytes, _held) = match read_body(&state.body_budget, body, limit, declared, config.body_read_timeout).await {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    let Ok(_permit) = state.permits.try_acquire() else {
        metrics::limit_hit("concurrent_requests");
        return ApiError::Overloaded(config.max_concurrent_requests).into_response();
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(config.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::limit_hit("request_timeout");
            ApiError::Timeout(config.request_timeout.as_millis()).into_response()
        }
    }
}

/// Reads a whole body within `timeout`, holding budget for its size (the declared length up
/// front, else the limit). The returned permit keeps the budget until the request is done.
async fn read_body(
    budget: &BodyBudget,
    body: Body,
    limit: usize,
    declared: Option<usize>,
    timeout: Duration,
) -> Result<(axum::body::Bytes, tokio::sync::OwnedSemaphorePermit), ApiError> {
    let units = u32::try_from(declared.unwrap_or(limit).div_ceil(BUDGET_UNIT)).unwrap_or(u32::MAX);
    let read = async {
        let held = match budget.units.clone().try_acquire_many_owned(units) {
            Ok(held) => held,
            Err(_) => {
                // Wait for other bodies to finish (within the read timeout), and say it happened.
                metrics::limit_hit("body_budget");
                budget.units.clone().acquire_many_owned(units).await.map_err(|_| ApiError::NotReady("shutting down"))?
            }
        };
        match Limited::new(body, limit).collect().await {
            Ok(collected) => Ok((collected.to_bytes(), held)),
            Err(error) if error.is::<LengthLimitError>() => Err(ApiError::PayloadTooLarge(limit)),
            Err(error) => Err(ApiError::BodyRead(error.to_string())),
        }
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => {
            metrics::limit_hit("body_read_timeout");
            Err(ApiError::BodyTimeout(timeout.as_millis()))
        }
    }
}
