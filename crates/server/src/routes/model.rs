//! `/model/info` (alias `/model-info`) and `/model/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

/// Name, version, source, classes, input schema, training summary and provenance of the served model.
#[utoipa::path(get, path = "/model/info", tag = "model", responses((status = 200, description = "model information", body = Object)))]
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let model = state.model();
    let m = &model.artifact.manifest;
    Json(json!({
        "name": m.name,
        "version": m.version,
        "source": model.source.kind(),
        "location": model.source.location(),
        "created_at": m.created_at,
        "target": m.target,
        "classes": m.classes,
        "input_schema": m.input_schema,
        "training": m.training,
        "provenance": m.provenance,
    }))
}

/// Model information (alias of `/model/info`).
#[utoipa::path(get, path = "/model-info", tag = "model", responses((status = 200, description = "model information", body = Object)))]
pub async fn info_alias(state: State<Arc<AppState>>) -> Json<Value> {
    info(state).await
}

/// Held-out evaluation metrics of the served model: accuracy, macro-F1, per class, confusion
/// matrix, log loss, calibration.
#[utoipa::path(get, path = "/model/metrics", tag = "model", responses((status = 200, description = "model metrics", body = Object)))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Json<Value> {
    let model = state.model();
    let m = &model.artifact.manifest;
    Json(json!({
        "name": m.name,
        "version": m.version,
        "source": model.source.kind(),
        "evaluated_on": "held-out test split (customers not seen in training)",
        "metrics": m.metrics,
    }))
}
