//! Handlers, by resource.

pub mod health;
pub mod meta;
pub mod model;
pub mod page;
pub mod predict;
pub mod sagemaker;
pub mod v2;

use axum::http::Uri;

use crate::ApiError;

/// 404 with the JSON error body.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

/// 405 with the JSON error body.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// What a scoring request scored, for the access log (a response extension).
#[derive(Debug, Clone)]
pub struct Scored {
    /// The model that answered.
    pub model: std::sync::Arc<crate::LoadedModel>,
    /// Records scored.
    pub rows: usize,
}
