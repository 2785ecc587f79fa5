//! `GET /models` (every configured model: name, kind, version, source, readiness) and
//! `GET /models/{name}/ready`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::schema::{ErrorBody, ReadyResponse};
use crate::{ApiError, AppState, LoadedModel, ModelSlot};

/// What kind of model an artifact holds (`basket-classifier`, `sales-forecast`).
pub fn kind(model: &LoadedModel) -> &'static str {
    model.artifact.kind().as_str()
}

/// One configured model.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelEntry {
    /// The configured name (`/models/{name}/…`, `/v2/models/{name}/…`).
    pub name: String,
    /// What it predicts: `basket-classifier` (price sensitivity LA/MM/UM of a basket) or
    /// `sales-forecast` (units sold per store, product and day).
    pub kind: Option<&'static str>,
    /// Version serving now; null while none is loaded.
    pub version: Option<String>,
    /// Where the serving version came from (`embedded`, `local`, `s3`, `registry`).
    pub source: Option<&'static str>,
    /// Where it is configured to load from.
    pub configured_source: String,
    /// Whether a version serves (a fallback while the configured source loads counts).
    pub ready: bool,
    /// Whether the unqualified routes (`/predict`, `/model/info`, …) serve it.
    pub default: bool,
}

/// The configured models.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// The model the unqualified routes serve (`DEFAULT_MODEL`).
    pub default: String,
    /// In configuration order.
    pub models: Vec<ModelEntry>,
}

fn entry(slot: &ModelSlot, default: bool) -> ModelEntry {
    let model = slot.model();
    ModelEntry {
        name: slot.name().to_owned(),
        kind: model.as_deref().map(kind),
        version: model.as_ref().map(|m| m.artifact.manifest.version.clone()),
        source: model.as_ref().map(|m| m.source.kind()),
        configured_source: slot.configured_source().location(),
        ready: model.is_some(),
        default,
    }
}

/// Every configured model: name, kind, version, source and readiness.
#[utoipa::path(get, path = "/models", tag = "model", responses((status = 200, description = "the configured models", body = ModelList)))]
pub async fn list(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    let models = state.models();
    let default = models.default_slot().name();
    Json(ModelList {
        default: default.to_owned(),
        models: models.iter().map(|slot| entry(slot, slot.name() == default)).collect(),
    })
}

/// Readiness of one model: a version of it is loaded and the server is not draining.
#[utoipa::path(get, path = "/models/{name}/ready", tag = "operations", operation_id = "named_model_ready",
    params(("name" = String, Path, description = "a configured model (GET /models)")),
    responses(
        (status = 200, description = "ready: the model is loaded", body = ReadyResponse),
        (status = 404, description = "no model is configured under this name", body = ErrorBody),
        (status = 503, description = "not loaded yet, or shutting down", body = ErrorBody),
    ))]
pub async fn ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ReadyResponse>, ApiError> {
    let slot = state.models().named(&name)?;
    if state.is_draining() {
        return Err(ApiError::NotReady("shutting down"));
    }
    let model = slot.serving()?;
    Ok(Json(ReadyResponse { status: "ready", model_version: model.artifact.manifest.version.clone() }))
}
