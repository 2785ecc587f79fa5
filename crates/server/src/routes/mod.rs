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
