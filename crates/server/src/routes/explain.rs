//! Explanations over HTTP: the `explain` query parameter of the scoring routes (with the
//! `explain` scope it needs), the global importance of a model (`/model/importance`,
//! `/models/{name}/importance`), and what `/model/info` says of both.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{Extensions, Uri};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::auth::{Scope, WithoutExplain};
use crate::routes::predict::query_param;
use crate::schema::ErrorBody;
use crate::scoring::FieldErrors;
use crate::{ApiError, AppState, LoadedModel, ModelSlot};

/// The `explain` query parameter of the scoring routes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExplainParam {
    /// `true` (or `1`): each answer carries `explanation`, its class scores (a regression: its
    /// value in the link space) split into a base and one contribution per input field, exact
    /// (TreeSHAP). Needs the `explain` scope when auth is on (403 without); 409
    /// `explanation_unavailable` for a model whose artifact has no `explain.json`. `false` (or
    /// `0`, or absent): no explanation, the answer exactly as without the parameter.
    #[param(inline, value_type = Option<String>, pattern = "^(true|false|1|0)$")]
    explain: Option<String>,
}

/// Whether the request asks for explanations (`explain=true|1`; `false|0` or absent: no): 422
/// naming `explain` for another value, 403 when its credential lacks the `explain` scope.
pub fn asked(uri: &Uri, extensions: &Extensions) -> Result<bool, ApiError> {
    let asked = match query_param(uri, "explain") {
        None | Some("false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            let shown: String = other.chars().take(32).collect();
            let mut errors = FieldErrors::default();
            errors.field("explain", || format!("must be true or false, got {shown:?}"));
            return Err(ApiError::Invalid(errors));
        }
    };
    if asked {
        allowed(extensions)?;
    }
    Ok(asked)
}

/// 403 (counted as an auth failure) when the request's credential lacks the `explain` scope.
pub fn allowed(extensions: &Extensions) -> Result<(), ApiError> {
    if extensions.get::<WithoutExplain>().is_some() {
        crate::metrics::auth_failure("insufficient_scope");
        return Err(ApiError::InsufficientScope(Scope::Explain));
    }
    Ok(())
}

/// Whether a scoring request asks for explanations (and may have them), as an extractor.
#[derive(Debug, Clone, Copy)]
pub struct Explain(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for Explain {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        asked(&parts.uri, &parts.extensions).map(Self)
    }
}

/// Whether the request's credential may have explanations (auth off, or it has the `explain`
/// scope), as an extractor: v2 reads the request for explanations from the body.
#[derive(Debug, Clone, Copy)]
pub struct MayExplain(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for MayExplain {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<WithoutExplain>().is_none()))
    }
}

/// A model's global importance: mean |contribution| of each input field over (a sample of) its
/// training rows.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"model": "retail-price-sensitivity", "version": "5aaf7da9b37f", "rows": 20000, "space": "log_odds",
    "outputs": ["LA", "MM", "UM"], "fields": [{"field": "SPEND", "mean_abs": 4.2, "per_output": {"LA": 1.9, "MM": 0.6, "UM": 1.7}}]}))]
pub struct ImportanceResponse {
    /// The name the model is served under.
    pub model: String,
    /// Its version.
    pub version: String,
    /// Training rows the means are over.
    pub rows: usize,
    /// The space of the contributions (as in `explanation.space`).
    pub space: &'static str,
    /// Outputs: class codes (a classifier), or the regression's one output.
    pub outputs: Vec<String>,
    /// Input fields, most important first.
    pub fields: Vec<FieldImportance>,
}

/// One input field's global importance.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldImportance {
    /// The input field.
    pub field: String,
    /// Mean over rows of the sum over outputs of |contribution|.
    pub mean_abs: f64,
    /// Mean |contribution| per output.
    pub per_output: BTreeMap<String, f64>,
}

/// Global importance of the default model: each input field's mean |contribution| (per class
/// too), from its training rows.
#[utoipa::path(get, path = "/model/importance", tag = "model", operation_id = "model_importance", responses(
    (status = 200, description = "mean |contribution| per input field, most important first", body = ImportanceResponse),
    (status = 409, description = "the model's artifact records no importance (no explain.json)", body = ErrorBody),
    (status = 503, description = "no model loaded yet", body = ErrorBody),
))]
pub async fn importance(State(state): State<Arc<AppState>>) -> Result<Json<ImportanceResponse>, ApiError> {
    importance_of(state.models().default_slot()).map(Json)
}

/// Global importance of the model `name` (as `/model/importance` gives for the default one).
#[utoipa::path(get, path = "/models/{name}/importance", tag = "model", operation_id = "named_model_importance",
    params(("name" = String, Path, description = "a configured model (GET /models)")),
    responses(
        (status = 200, description = "mean |contribution| per input field, most important first", body = ImportanceResponse),
        (status = 409, description = "the model's artifact records no importance (no explain.json)", body = ErrorBody),
        (status = 503, description = "no model loaded yet", body = ErrorBody),
    ))]
pub async fn model_importance(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<ImportanceResponse>, ApiError> {
    importance_of(state.models().named(&name)?).map(Json)
}

fn importance_of(slot: &ModelSlot) -> Result<ImportanceResponse, ApiError> {
    let model = slot.serving()?;
    let artifact = &model.artifact;
    let Some(importance) = &artifact.importance else {
        let reason = format!("model {:?} records no importance: its artifact has no explain.json", slot.name());
        return Err(ApiError::ExplanationUnavailable(reason));
    };
    let fields = importance
        .fields
        .iter()
        .map(|f| FieldImportance {
            field: f.field.clone(),
            mean_abs: f.mean_abs,
            per_output: importance.outputs.iter().cloned().zip(f.per_output.iter().copied()).collect(),
        })
        .collect();
    Ok(ImportanceResponse {
        model: slot.name().to_owned(),
        version: artifact.manifest.version.clone(),
        rows: importance.rows,
        space: importance.space.as_str(),
        outputs: importance.outputs.clone(),
        fields,
    })
}

/// What `/model/info` says of a model's explanations: whether it can explain, in which space,
/// the input fields contributions are reported for (in the order of v2's `contributions`
/// tensor), and where its global importance is.
pub fn info(name: &str, model: &LoadedModel) -> Value {
    let artifact = &model.artifact;
    let importance = artifact.importance.is_some().then(|| format!("/models/{name}/importance"));
    match &artifact.explainer {
        Ok(explainer) => json!({
            "available": true,
            "space": explainer.space().as_str(),
            "fields": explainer.fields(),
            "importance": importance,
        }),
        Err(e) => json!({"available": false, "reason": e.to_string(), "importance": importance}),
    }
}
