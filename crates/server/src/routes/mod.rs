//! Handlers, by resource.

pub mod card;
pub mod explain;
pub mod health;
pub mod meta;
pub mod model;
pub mod models;
pub mod page;
pub mod predict;
pub mod sagemaker;
pub mod v2;

use std::sync::Arc;

use axum::http::Uri;
use axum::response::{IntoResponse, Redirect, Response};

use crate::{ApiError, LoadedModel};

/// What a scoring request scored, for the access log.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The model that scored it.
    pub model: Arc<LoadedModel>,
    /// Rows scored (0 when the request was refused after the model was taken).
    pub rows: usize,
}

/// 404 with the JSON error body; a path with a trailing slash is redirected (307, method and
/// body kept) to the path without it, as FastAPI/Starlette do.
pub async fn not_found(uri: Uri) -> Response {
    let path = uri.path();
    let trimmed = path.trim_end_matches('/');
    // `//host/` must not become a redirect to another host.
    if path.len() > 1 && !trimmed.is_empty() && !trimmed.starts_with("//") && trimmed.len() < path.len() {
        let location = match uri.query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        return Redirect::temporary(&location).into_response();
    }
    ApiError::NotFound(path.to_owned()).into_response()
}

/// 405 with the JSON error body.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
