//! Handlers, by resource.

pub mod health;
pub mod meta;
pub mod model;
pub mod page;
pub mod predict;
pub mod sagemaker;
pub mod v2;

use std::sync::Arc;

use axum::http::Uri;

use crate::{ApiError, LoadedModel};

/// What a scoring request scored, for the access log.
#[derive(Debug, Clone)]
pub struct Scored {
    /// The model that scored it.
    pub model: Arc<LoadedModel>,
    /// Rows scored (0 when the request was refused after the model was taken).
    pub rows: usize,
}

/// 404 with the JSON error body.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

/// 405 with the JSON error body.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
