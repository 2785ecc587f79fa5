//! Liveness (`/health`, `/healthz`) and readiness (`/ready`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use crate::schema::{ErrorBody, HealthResponse, ReadyResponse};
use crate::{ApiError, AppState};

/// Liveness: the process answers (with or without a model loaded).
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "live", body = HealthResponse)))]
pub async fn health(State(state): State<Arc<AppState>>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "healthy",
        timestamp: retail_model::time::now_rfc3339(),
        model_version: state.model().map(|m| m.artifact.manifest.version.clone()),
    })
}

/// Liveness (alias of `/health`).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "live", body = HealthResponse)))]
pub async fn healthz(state: State<Arc<AppState>>) -> Json<HealthResponse> {
    health(state).await
}

/// Readiness: every configured model is loaded and the server is not draining.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "ready: every configured model is loaded (`model_version`: the default one's)", body = ReadyResponse),
    (status = 503, description = "no model loaded yet, or shutting down", body = ErrorBody),
))]
pub async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<ReadyResponse>, ApiError> {
    if state.is_draining() {
        return Err(ApiError::NotReady("shutting down"));
    }
    if !state.models().all_serving() {
        return Err(ApiError::NotReady("a configured model is not loaded yet"));
    }
    let model = state.serving()?;
    Ok(Json(ReadyResponse { status: "ready", model_version: model.artifact.manifest.version.clone() }))
}
