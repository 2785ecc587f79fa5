//! Liveness (`/health`, `/healthz`) and readiness (`/ready`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

/// Liveness: the process answers.
pub async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "status": "healthy",
        "timestamp": retail_model::time::now_rfc3339(),
        "model_version": state.artifact.manifest.version,
    }))
}

/// Readiness: a model is loaded and the server is not draining.
pub async fn ready(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if state.is_draining() {
        return Err(ApiError::NotReady("shutting down"));
    }
    Ok(Json(
        json!({"status": "ready", "model_version": state.artifact.manifest.version}),
    ))
}
