//! Open Inference Protocol v2 (KServe / Triton HTTP) for model `retail-price-sensitivity`:
//! columnar inputs, one tensor per flat-record field (strings as `BYTES`), outputs `label`
//! (`BYTES`, `[N]`) and `probabilities` (`FP64`, `[N, 3]`, classes in model order), errors as
//! `{"error": "..."}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use crate::edge::request_id::RequestId;
use crate::routes::explain::MayExplain;
use crate::routes::predict::{check_json, off_the_runtime, with_scored};
use crate::schema::{
    ErrorBody, V2InferRequest, V2InferResponse, V2Live, V2ModelMetadata, V2ModelReady, V2ModelReadyOrError, V2Ready,
    V2ServerMetadata,
};
use crate::scoring::v2::{INPUTS, Inference, SALES_INPUTS, tabular_inputs};
use crate::scoring::{self, ContributionTensors, ScoreError};
use crate::{AppState, LoadedModel};
use retail_model::artifact::Features;

/// A v2 error: the protocol's `{"error": "..."}`.
pub struct V2Error(StatusCode, String);

impl IntoResponse for V2Error {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response.extensions_mut().insert(crate::error::PendingError::Protocol(self.1.into()));
        response
    }
}

fn bad_request(message: impl Into<String>) -> V2Error {
    V2Error(StatusCode::BAD_REQUEST, message.into())
}

/// Server metadata.
#[utoipa::path(get, path = "/v2", tag = "inference protocol v2", operation_id = "v2_server_metadata", responses((status = 200, description = "server metadata", body = V2ServerMetadata)))]
pub async fn server_metadata() -> Json<Value> {
    Json(json!({"name": "retail-api", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
}

/// Server liveness.
#[utoipa::path(get, path = "/v2/health/live", tag = "inference protocol v2", operation_id = "v2_live", responses((status = 200, description = "live", body = V2Live)))]
pub async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

/// Server readiness.
#[utoipa::path(get, path = "/v2/health/ready", tag = "inference protocol v2", operation_id = "v2_ready", responses((status = 200, description = "ready", body = V2Ready), (status = 503, description = "not ready", body = V2Ready)))]
pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let ready = state.is_ready();
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(json!({"ready": ready})))
}

/// The model configured (or, for single-model clients, loaded) under `name`, serving now, in
/// `version` if one is asked for: 404 for an unknown model or version, the protocol's 503 while
/// none is loaded.
fn resolve(state: &AppState, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>, V2Error> {
    let models = state.models();
    let slot = models.find(name).ok_or_else(|| {
        let name: String = name.chars().take(64).collect();
        V2Error(StatusCode::NOT_FOUND, format!("model {name:?} not found (this server serves {:?})", models.names()))
    })?;
    let model =
        slot.model().ok_or_else(|| V2Error(StatusCode::SERVICE_UNAVAILABLE, "no model loaded yet".to_owned()))?;
    match version {
        Some(v) if v != model.artifact.manifest.version => {
            let v: String = v.chars().take(64).collect();
            Err(V2Error(
                StatusCode::NOT_FOUND,
                format!(
                    "model {:?} version {v:?} not found (serving {:?})",
                    slot.name(),
                    model.artifact.manifest.version
                ),
            ))
        }
        _ => Ok(model),
    }
}

fn metadata(model: &LoadedModel) -> Value {
    let m = &model.artifact.manifest;
    let inputs: Vec<(&str, &str)> = match &model.artifact.features {
        Features::Basket(_) => INPUTS.to_vec(),
        Features::Sales(_) => SALES_INPUTS.to_vec(),
        Features::Tabular(schema) => tabular_inputs(schema),
    };
    let inputs: Vec<Value> =
        inputs.iter().map(|(name, datatype)| json!({"name": name, "datatype": datatype, "shape": [-1]})).collect();
    let outputs = if scoring::is_regression(&model.artifact) {
        json!([{"name": "prediction", "datatype": "FP64", "shape": [-1]}])
    } else {
        json!([
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, m.classes.len()]},
        ])
    };
    let mut outputs = outputs;
    let mut parameters =
        json!({"kind": m.kind.as_str(), "classes": m.classes.iter().map(|c| c.code.as_str()).collect::<Vec<_>>()});
    if let (Ok(explainer), Some(list)) = (&model.artifact.explainer, outputs.as_array_mut()) {
        let (n_out, n_fields) =
            (if scoring::is_regression(&model.artifact) { 1 } else { m.classes.len() }, explainer.fields().len());
        list.push(json!({"name": "contributions", "datatype": "FP64", "shape": [-1, n_out, n_fields]}));
        list.push(json!({"name": "base", "datatype": "FP64", "shape": [-1, n_out]}));
        parameters["contribution_fields"] = json!(explainer.fields());
        parameters["contribution_space"] = json!(explainer.space().as_str());
    }
    json!({
        "name": model.name.as_ref(),
        "versions": [m.version],
        "platform": "retail-gbdt",
        "inputs": inputs,
        "outputs": outputs,
        "parameters": parameters,
    })
}

/// Model metadata.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "inference protocol v2", params(("name" = String, Path, description = "model name")), operation_id = "v2_model_metadata", responses((status = 200, description = "model metadata", body = V2ModelMetadata), (status = 404, description = "unknown model", body = ErrorBody), (status = 503, description = "no model loaded yet", body = ErrorBody)))]
pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, V2Error> {
    let model = resolve(&state, &name, None)?;
    Ok(Json(metadata(&model)))
}

/// Model metadata of a version.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "inference protocol v2", params(("name" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")), operation_id = "v2_model_version_metadata", responses((status = 200, description = "model metadata", body = V2ModelMetadata), (status = 404, description = "unknown model or version", body = ErrorBody), (status = 503, description = "no model loaded yet", body = ErrorBody)))]
pub async fn model_version_metadata(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, V2Error> {
    let model = resolve(&state, &name, Some(&version))?;
    Ok(Json(metadata(&model)))
}

/// A loaded model is ready unless the server is draining.
fn model_ready_answer(state: &AppState, model: &LoadedModel) -> (StatusCode, Json<Value>) {
    let ready = !state.is_draining();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(json!({"name": model.name.as_ref(), "ready": ready})))
}

/// Model readiness.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "inference protocol v2", params(("name" = String, Path, description = "model name")), operation_id = "v2_model_ready", responses((status = 200, description = "ready", body = V2ModelReady), (status = 404, description = "unknown model", body = ErrorBody), (status = 503, description = "no model loaded yet (`error`), or shutting down (`ready: false`)", body = V2ModelReadyOrError)))]
pub async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), V2Error> {
    let model = resolve(&state, &name, None)?;
    Ok(model_ready_answer(&state, &model))
}

/// Model readiness of a version.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "inference protocol v2", params(("name" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")), operation_id = "v2_model_version_ready", responses((status = 200, description = "ready", body = V2ModelReady), (status = 404, description = "unknown model or version", body = ErrorBody), (status = 503, description = "no model loaded yet (`error`), or shutting down (`ready: false`)", body = V2ModelReadyOrError)))]
pub async fn model_version_ready(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), V2Error> {
    let model = resolve(&state, &name, Some(&version))?;
    Ok(model_ready_answer(&state, &model))
}

/// Inference: one tensor per input, N rows each.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "inference protocol v2", params(("name" = String, Path, description = "model name")),
    operation_id = "v2_infer",
    request_body(content = V2InferRequest, content_type = "application/json", example = json!({"id": "1", "inputs": [
        {"name": "BASKET_SIZE", "shape": [1], "datatype": "BYTES", "data": ["M"]},
        {"name": "BASKET_TYPE", "shape": [1], "datatype": "BYTES", "data": ["MIXED"]},
        {"name": "STORE_REGION", "shape": [1], "datatype": "BYTES", "data": ["LONDON"]},
        {"name": "STORE_FORMAT", "shape": [1], "datatype": "BYTES", "data": ["LS"]},
        {"name": "SPEND", "shape": [1], "datatype": "FP64", "data": [125.5]},
        {"name": "QUANTITY", "shape": [1], "datatype": "FP64", "data": [3]},
        {"name": "PROD_CODE_20", "shape": [1], "datatype": "BYTES", "data": ["FOOD"]},
        {"name": "PROD_CODE_30", "shape": [1], "datatype": "BYTES", "data": ["FRESH"]}]})),
    responses((status = 200, description = INFER_OUTPUTS, body = V2InferResponse), (status = 404, description = "unknown model", body = ErrorBody)))]
pub async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RequestId(id): RequestId,
    MayExplain(may_explain): MayExplain,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, V2Error> {
    let model = resolve(&state, &name, None)?;
    run_inference(&state, (model, may_explain), &headers, body, id).await
}

/// What an inference answers.
const INFER_OUTPUTS: &str = "outputs label and probabilities (a classifier) or prediction (a regression); asked for by name, `contributions` (FP64 [N, outputs, fields]: each row's explanation, fields in the order of its `parameters.fields` and of /model/info's `explanations.fields`; needs the explain scope; 409 for a model without explain.json) and `base` (FP64 [N, outputs])";

/// Inference on a version.
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "inference protocol v2", params(("name" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")),
    operation_id = "v2_infer_version",
    request_body(content = V2InferRequest, content_type = "application/json"),
    responses((status = 200, description = INFER_OUTPUTS, body = V2InferResponse), (status = 404, description = "unknown model or version", body = ErrorBody)))]
pub async fn infer_version(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    RequestId(id): RequestId,
    MayExplain(may_explain): MayExplain,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, V2Error> {
    let model = resolve(&state, &name, Some(&version))?;
    run_inference(&state, (model, may_explain), &headers, body, id).await
}

/// Scores a v2 request with `model` (`may_explain`: whether the credential may have the
/// `contributions` output).
async fn run_inference(
    state: &Arc<AppState>,
    (model, may_explain): (Arc<LoadedModel>, bool),
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    request_id: String,
) -> Result<Response, V2Error> {
    check_json(headers)
        .map_err(|_| V2Error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content type must be application/json".to_owned()))?;
    let body = body.map_err(|r| V2Error(r.status(), r.body_text()))?;
    let (worker, max_rows) = (model.clone(), state.config.max_batch_rows);
    let inference =
        off_the_runtime(state, move |cancel| scoring::v2::infer(&*worker, &body, (max_rows, may_explain), cancel))
            .await
            .map_err(|e| V2Error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(match inference {
        Ok(inference) => {
            let rows = inference.rows;
            with_scored(Json(answer(&model, &inference, &request_id)), &model, rows)
        }
        Err(e) => with_scored(refusal(e), &model, 0),
    })
}

/// The protocol's error for a request that was not scored: 403 for `contributions` without the
/// `explain` scope (counted as an auth failure), 409 for them of a model that cannot explain,
/// else 400.
fn refusal(e: ScoreError) -> V2Error {
    match e {
        ScoreError::Invalid(errors) => bad_request(errors.summary()),
        ScoreError::ExplainNotAllowed => {
            crate::metrics::auth_failure("insufficient_scope");
            V2Error(StatusCode::FORBIDDEN, e.to_string())
        }
        ScoreError::Explain(e) => V2Error(StatusCode::CONFLICT, e.to_string()),
        other => bad_request(other.to_string()),
    }
}

/// An inference answer.
#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    id: &'a str,
    outputs: Vec<Output<'a>>,
}

/// One output tensor.
#[derive(Serialize)]
struct Output<'a> {
    name: &'static str,
    shape: Vec<usize>,
    datatype: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    data: OutputData<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutputData<'a> {
    Labels(Vec<&'a str>),
    Numbers(&'a [f64]),
}

/// The `contributions` tensor (`[N, outputs, fields]`, its field and output names and space as
/// `parameters`) and the `base` tensor (`[N, outputs]`).
fn explanation_outputs<'a>(model: &LoadedModel, t: &'a ContributionTensors, n: usize) -> [Output<'a>; 2] {
    let outputs: Vec<&str> = if scoring::is_regression(&model.artifact) {
        vec!["prediction"]
    } else {
        model.artifact.manifest.classes.iter().map(|c| c.code.as_str()).collect()
    };
    let parameters = json!({"fields": t.fields, "outputs": outputs, "space": t.space.as_str()});
    [
        Output {
            name: "contributions",
            shape: vec![n, t.outputs, t.fields.len()],
            datatype: "FP64",
            parameters: Some(parameters),
            data: OutputData::Numbers(&t.contributions),
        },
        Output {
            name: "base",
            shape: vec![n, t.outputs],
            datatype: "FP64",
            parameters: None,
            data: OutputData::Numbers(&t.base),
        },
    ]
}

fn answer<'a>(model: &'a LoadedModel, inference: &'a Inference, request_id: &'a str) -> InferResponse<'a> {
    let m = &model.artifact.manifest;
    let n = inference.rows;
    let mut outputs = Vec::with_capacity(4);
    if inference.outputs.prediction {
        let data = OutputData::Numbers(&inference.probabilities);
        outputs.push(Output { name: "prediction", shape: vec![n], datatype: "FP64", parameters: None, data });
    }
    if inference.outputs.label {
        let labels = inference.classes.iter().map(|&c| m.classes.get(c).map_or("", |c| c.code.as_str())).collect();
        outputs.push(Output {
            name: "label",
            shape: vec![n],
            datatype: "BYTES",
            parameters: None,
            data: OutputData::Labels(labels),
        });
    }
    if inference.outputs.probabilities {
        outputs.push(Output {
            name: "probabilities",
            shape: vec![n, m.classes.len()],
            datatype: "FP64",
            parameters: None,
            data: OutputData::Numbers(&inference.probabilities),
        });
    }
    if let Some(t) = &inference.contributions {
        outputs.extend(explanation_outputs(model, t, n));
    }
    InferResponse {
        model_name: &model.name,
        model_version: &m.version,
        id: inference.id.as_deref().unwrap_or(request_id),
        outputs,
    }
}
