//! `/model/info` (alias `/model-info`), `/model/metrics` and `/model/drift`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use crate::drift::DriftResponse;
use crate::schema::ErrorBody;
use crate::{ApiError, AppState, ModelSlot};

/// Name, version, source, model format (native trees or an imported ONNX model with its input
/// mapping), classes, input schema, training summary and provenance of the served model.
/// `configured_source` differs from `location` while a fallback serves. Served from the
/// SageMaker Model Registry, `registry` tells the package: group, version, ARN, approval status,
/// registration time, artifact URL and customer metadata.
#[utoipa::path(get, path = "/model/info", tag = "model", responses(
    (status = 200, description = "model information", body = Object),
    (status = 503, description = "no model loaded yet", body = ErrorBody),
))]
pub async fn info(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    info_of(state.models().default_slot()).map(Json)
}

/// Information on the model `name` (as `/model/info` gives for the default one).
#[utoipa::path(get, path = "/models/{name}/info", tag = "model", operation_id = "named_model_info",
    params(("name" = String, Path, description = "a configured model (GET /models)")),
    responses(
        (status = 200, description = "model information", body = Object),
        (status = 503, description = "no model loaded yet", body = ErrorBody),
    ))]
pub async fn model_info(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    info_of(state.models().named(&name)?).map(Json)
}

/// What `/model/info` says of the model serving in `slot`.
fn info_of(slot: &ModelSlot) -> Result<Value, ApiError> {
    let model = slot.serving()?;
    let m = &model.artifact.manifest;
    let configured = slot.configured_source();
    Ok(json!({
        "model": slot.name(),
        "kind": super::models::kind(&model),
        "name": m.name,
        "version": m.version,
        "source": model.source.kind(),
        "location": model.source.location(),
        "configured_source": configured.location(),
        "fallback": model.source != *configured,
        "format_version": m.format_version,
        "model_format": m.model,
        "created_at": m.created_at,
        "target": m.target,
        "classes": m.classes,
        "input_schema": m.input_schema,
        "training": m.training,
        "provenance": m.provenance,
        "explanations": super::explain::info(slot.name(), &model),
        "registry": model.package.as_ref().map(|p| json!({
            "group": p.group,
            "version": p.version,
            "arn": p.arn,
            "approval_status": p.approval_status,
            "creation_time": p.creation_time,
            "model_data_url": p.model_data_url,
            "customer_metadata": p.customer_metadata,
        })),
    }))
}

/// Model information (alias of `/model/info`).
#[utoipa::path(get, path = "/model-info", tag = "model", responses(
    (status = 200, description = "model information", body = Object),
    (status = 503, description = "no model loaded yet", body = ErrorBody),
))]
pub async fn info_alias(state: State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    info(state).await
}

/// Held-out evaluation metrics of the served model: accuracy, macro-F1, per class, confusion
/// matrix, log loss, calibration. Served from the SageMaker Model Registry, `registry` adds what
/// the registry holds for the package: its `ModelMetrics`, the model-quality statistics document
/// they point at, and its customer metadata.
#[utoipa::path(get, path = "/model/metrics", tag = "model", responses(
    (status = 200, description = "model metrics", body = Object),
    (status = 503, description = "no model loaded yet", body = ErrorBody),
))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    metrics_of(state.models().default_slot()).map(Json)
}

/// Held-out evaluation metrics of the model `name` (as `/model/metrics` gives for the default one).
#[utoipa::path(get, path = "/models/{name}/metrics", tag = "model", operation_id = "named_model_metrics",
    params(("name" = String, Path, description = "a configured model (GET /models)")),
    responses(
        (status = 200, description = "model metrics", body = Object),
        (status = 503, description = "no model loaded yet", body = ErrorBody),
    ))]
pub async fn model_metrics(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    metrics_of(state.models().named(&name)?).map(Json)
}

/// What `/model/metrics` says of the model serving in `slot`.
fn metrics_of(slot: &ModelSlot) -> Result<Value, ApiError> {
    let model = slot.serving()?;
    let m = &model.artifact.manifest;
    Ok(json!({
        "model": slot.name(),
        "name": m.name,
        "version": m.version,
        "source": model.source.kind(),
        "evaluated_on": "held-out test split (customers not seen in training)",
        "metrics": m.metrics,
        "registry": model.package.as_ref().map(|p| json!({
            "group": p.group,
            "version": p.version,
            "approval_status": p.approval_status,
            "model_metrics": p.model_metrics,
            "model_quality": p.model_quality,
            "customer_metadata": p.customer_metadata,
        })),
    }))
}

/// Drift of the default model's recent inputs and predictions from its training reference: per
/// feature and for the prediction, the population stability index and the Jensen–Shannon
/// distance (and L∞ for categorical features) of the rolling window (`DRIFT_WINDOW_ROWS` rows or
/// `DRIFT_WINDOW_SECONDS`, reset when a new version loads) against the reference, with a
/// verdict once the window holds `DRIFT_MIN_ROWS` rows. `available` is false (with `reason`)
/// for artifacts made before references were recorded.
#[utoipa::path(get, path = "/model/drift", tag = "model", operation_id = "model_drift", responses(
    (status = 200, description = "drift statistics of the served version", body = DriftResponse),
    (status = 503, description = "no model loaded yet", body = ErrorBody),
))]
pub async fn drift(State(state): State<Arc<AppState>>) -> Result<Json<DriftResponse>, ApiError> {
    drift_of(&state, state.models().default_slot()).map(Json)
}

/// Drift of the model `name` (as `/model/drift` gives for the default one).
#[utoipa::path(get, path = "/models/{name}/drift", tag = "model", operation_id = "named_model_drift",
    params(("name" = String, Path, description = "a configured model (GET /models)")),
    responses(
        (status = 200, description = "drift statistics of the served version", body = DriftResponse),
        (status = 503, description = "no model loaded yet", body = ErrorBody),
    ))]
pub async fn model_drift(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<DriftResponse>, ApiError> {
    drift_of(&state, state.models().named(&name)?).map(Json)
}

fn drift_of(state: &AppState, slot: &ModelSlot) -> Result<DriftResponse, ApiError> {
    let model = slot.serving()?;
    Ok(crate::drift::response(slot.name(), &model, &state.config.drift))
}
