//! `/model/info` and `/model/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

/// Name, version, source, classes, input schema and provenance of the served model.
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = &state.artifact.manifest;
    Json(json!({
        "name": m.name,
        "version": m.version,
        "source": state.source.kind(),
        "location": state.source.location(),
        "created_at": m.created_at,
        "target": m.target,
        "classes": m.classes,
        "input_schema": m.input_schema,
        "training": m.training,
        "provenance": m.provenance,
    }))
}

/// Held-out evaluation metrics of the served model.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Json<Value> {
    let m = &state.artifact.manifest;
    Json(json!({
        "name": m.name,
        "version": m.version,
        "source": state.source.kind(),
        "evaluated_on": "held-out test split (customers not seen in training)",
        "metrics": m.metrics,
    }))
}
