//! Open Inference Protocol v2 (KServe / Triton HTTP) for model `retail-price-sensitivity`:
//! columnar inputs, one tensor per flat-record field (strings as `BYTES`), outputs `label`
//! (`BYTES`, `[N]`) and `probabilities` (`FP64`, `[N, 3]`, classes in model order), errors as
//! `{"error": "..."}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::edge::request_id::RequestId;
use crate::{AppState, LoadedModel};

/// Inputs the model takes, in the order of the seed's flat record, with their v2 datatypes.
const INPUTS: [(&str, &str); 8] = [
    ("BASKET_SIZE", "BYTES"),
    ("BASKET_TYPE", "BYTES"),
    ("STORE_REGION", "BYTES"),
    ("STORE_FORMAT", "BYTES"),
    ("SPEND", "FP64"),
    ("QUANTITY", "FP64"),
    ("PROD_CODE_20", "BYTES"),
    ("PROD_CODE_30", "BYTES"),
];

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
#[utoipa::path(get, path = "/v2", tag = "inference protocol v2", responses((status = 200, description = "server metadata", body = Object)))]
pub async fn server_metadata() -> Json<Value> {
    Json(json!({"name": "retail-api", "version": env!("CARGO_PKG_VERSION"), "extensions": []}))
}

/// Server liveness.
#[utoipa::path(get, path = "/v2/health/live", tag = "inference protocol v2", responses((status = 200, description = "live", body = Object)))]
pub async fn live() -> Json<Value> {
    Json(json!({"live": true}))
}

/// Server readiness.
#[utoipa::path(get, path = "/v2/health/ready", tag = "inference protocol v2", responses((status = 200, description = "ready", body = Object), (status = 503, description = "not ready", body = Object)))]
pub async fn ready(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let ready = state.is_ready();
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(json!({"ready": ready})))
}

/// The model serving now, or the protocol's 503 while none is loaded.
fn serving(state: &AppState) -> Result<Arc<LoadedModel>, V2Error> {
    state.model().ok_or_else(|| V2Error(StatusCode::SERVICE_UNAVAILABLE, "no model loaded yet".to_owned()))
}

/// Checks the model name and optional version against the served model.
fn check_model(model: &LoadedModel, name: &str, version: Option<&str>) -> Result<(), V2Error> {
    let m = &model.artifact.manifest;
    if name != m.name {
        return Err(V2Error(
            StatusCode::NOT_FOUND,
            format!("model {name:?} not found (this server serves {:?})", m.name),
        ));
    }
    match version {
        Some(v) if v != m.version => Err(V2Error(
            StatusCode::NOT_FOUND,
            format!("model {name:?} version {v:?} not found (serving {:?})", m.version),
        )),
        _ => Ok(()),
    }
}

fn metadata(model: &LoadedModel) -> Value {
    let m = &model.artifact.manifest;
    json!({
        "name": m.name,
        "versions": [m.version],
        "platform": "retail-gbdt",
        "inputs": INPUTS.iter().map(|(name, datatype)| json!({"name": name, "datatype": datatype, "shape": [-1]})).collect::<Vec<_>>(),
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, m.classes.len()]},
        ],
        "parameters": {"classes": m.classes.iter().map(|c| c.code.as_str()).collect::<Vec<_>>()},
    })
}

/// Model metadata.
#[utoipa::path(get, path = "/v2/models/{name}", tag = "inference protocol v2", params(("name" = String, Path, description = "model name")), responses((status = 200, description = "model metadata", body = Object), (status = 404, description = "unknown model", body = Object)))]
pub async fn model_metadata(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<Value>, V2Error> {
    let model = serving(&state)?;
    check_model(&model, &name, None)?;
    Ok(Json(metadata(&model)))
}

/// Model metadata of a version.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "inference protocol v2", params(("name" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")), responses((status = 200, description = "model metadata", body = Object), (status = 404, description = "unknown model or version", body = Object)))]
pub async fn model_version_metadata(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>, V2Error> {
    let model = serving(&state)?;
    check_model(&model, &name, Some(&version))?;
    Ok(Json(metadata(&model)))
}

fn model_ready_answer(state: &AppState, name: &str) -> (StatusCode, Json<Value>) {
    let ready = state.is_ready();
    (if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(json!({"name": name, "ready": ready})))
}

/// Model readiness.
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "inference protocol v2", params(("name" = String, Path, description = "model name")), responses((status = 200, description = "ready", body = Object), (status = 404, description = "unknown model", body = Object)))]
pub async fn model_ready(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), V2Error> {
    let model = serving(&state)?;
    check_model(&model, &name, None)?;
    Ok(model_ready_answer(&state, &name))
}

/// Model readiness of a version.
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "inference protocol v2", params(("name" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")), responses((status = 200, description = "ready", body = Object), (status = 404, description = "unknown model or version", body = Object)))]
pub async fn model_version_ready(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Value>), V2Error> {
    let model = serving(&state)?;
    check_model(&model, &name, Some(&version))?;
    Ok(model_ready_answer(&state, &name))
}

/// Inference: one tensor per input, N rows each.
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "inference protocol v2", params(("name" = String, Path, description = "model name")),
    request_body(content = Object, content_type = "application/json", example = json!({"id": "1", "inputs": [
        {"name": "BASKET_SIZE", "shape": [1], "datatype": "BYTES", "data": ["M"]},
        {"name": "BASKET_TYPE", "shape": [1], "datatype": "BYTES", "data": ["MIXED"]},
        {"name": "STORE_REGION", "shape": [1], "datatype": "BYTES", "data": ["LONDON"]},
        {"name": "STORE_FORMAT", "shape": [1], "datatype": "BYTES", "data": ["LS"]},
        {"name": "SPEND", "shape": [1], "datatype": "FP64", "data": [125.5]},
        {"name": "QUANTITY", "shape": [1], "datatype": "FP64", "data": [3]},
        {"name": "PROD_CODE_20", "shape": [1], "datatype": "BYTES", "data": ["FOOD"]},
        {"name": "PROD_CODE_30", "shape": [1], "datatype": "BYTES", "data": ["FRESH"]}]})),
    responses((status = 200, description = "outputs label and probabilities", body = Object), (status = 400, description = "bad request", body = Object), (status = 404, description = "unknown model", body = Object)))]
pub async fn infer(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RequestId(id): RequestId,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, V2Error> {
    let model = serving(&state)?;
    check_model(&model, &name, None)?;
    run_inference(&state, model, body, &id).await
}

/// Inference on a version.
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "inference protocol v2", params(("name" = String, Path, description = "model name"), ("version" = String, Path, description = "model version")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "outputs label and probabilities", body = Object), (status = 400, description = "bad request", body = Object), (status = 404, description = "unknown model or version", body = Object)))]
pub async fn infer_version(
    State(state): State<Arc<AppState>>,
    Path((name, version)): Path<(String, String)>,
    RequestId(id): RequestId,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, V2Error> {
    let model = serving(&state)?;
    check_model(&model, &name, Some(&version))?;
    run_inference(&state, model, body, &id).await
}

async fn run_inference(
    state: &Arc<AppState>,
    model: Arc<LoadedModel>,
    body: Result<Bytes, BytesRejection>,
    request_id: &str,
) -> Result<Json<Value>, V2Error> {
    let body = body.map_err(|r| V2Error(r.status(), r.body_text()))?;
    let request: Value =
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("request body is not valid JSON: {e}")))?;
    let (records, n) = columns_to_records(&request, state.config.max_batch_rows)?;
    let worker = model.clone();
    let predictions =
        crate::routes::predict::off_the_runtime(move || crate::routes::predict::score_records(&worker, &records))
            .await
            .map_err(|e| V2Error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|errors| {
                bad_request(errors.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; "))
            })?;
    let m = &model.artifact.manifest;
    let labels: Vec<&str> = predictions.iter().map(|p| p.prediction.as_str()).collect();
    let probabilities: Vec<f64> =
        predictions.iter().flat_map(|p| m.classes.iter().map(|c| p.probabilities[&c.code])).collect();
    let wanted = requested_outputs(&request)?;
    let mut outputs = Vec::new();
    if wanted.as_ref().is_none_or(|w| w.iter().any(|o| o == "label")) {
        outputs.push(json!({"name": "label", "shape": [n], "datatype": "BYTES", "data": labels}));
    }
    if wanted.as_ref().is_none_or(|w| w.iter().any(|o| o == "probabilities")) {
        outputs.push(
            json!({"name": "probabilities", "shape": [n, m.classes.len()], "datatype": "FP64", "data": probabilities}),
        );
    }
    let id = request.get("id").and_then(Value::as_str).unwrap_or(request_id);
    Ok(Json(json!({"model_name": m.name, "model_version": m.version, "id": id, "outputs": outputs})))
}

/// Names in the request's optional `outputs`; unknown names are an error.
fn requested_outputs(request: &Value) -> Result<Option<Vec<String>>, V2Error> {
    let Some(outputs) = request.get("outputs") else {
        return Ok(None);
    };
    let names: Vec<String> = outputs
        .as_array()
        .ok_or_else(|| bad_request("outputs must be an array"))?
        .iter()
        .map(|o| {
            o.get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad_request("each output needs a name"))
        })
        .collect::<Result<_, _>>()?;
    if let Some(unknown) = names.iter().find(|n| *n != "label" && *n != "probabilities") {
        return Err(bad_request(format!("unknown output {unknown:?} (outputs are label and probabilities)")));
    }
    Ok(Some(names))
}

/// Flattens nested JSON arrays (row-major) into one list.
fn flatten(data: &Value, out: &mut Vec<Value>) {
    match data {
        Value::Array(items) => items.iter().for_each(|v| flatten(v, out)),
        other => out.push(other.clone()),
    }
}

/// Turns the columnar `inputs` into one flat-record object per row.
fn columns_to_records(request: &Value, max_rows: usize) -> Result<(Vec<Value>, usize), V2Error> {
    let inputs = request
        .get("inputs")
        .and_then(Value::as_array)
        .ok_or_else(|| bad_request("inputs must be an array of tensors"))?;
    let mut columns: Vec<(&str, Vec<Value>)> = Vec::with_capacity(INPUTS.len());
    for (name, datatype) in INPUTS {
        let tensor = inputs.iter().find(|t| t.get("name").and_then(Value::as_str) == Some(name)).ok_or_else(|| {
            bad_request(format!("input {name} is missing (inputs: {})", INPUTS.map(|i| i.0).join(", ")))
        })?;
        let given = tensor.get("datatype").and_then(Value::as_str).unwrap_or_default();
        let numeric = matches!(
            given,
            "FP64" | "FP32" | "FP16" | "INT8" | "INT16" | "INT32" | "INT64" | "UINT8" | "UINT16" | "UINT32" | "UINT64"
        );
        if (datatype == "BYTES" && given != "BYTES") || (datatype == "FP64" && !numeric) {
            return Err(bad_request(format!("input {name} has datatype {given:?}, expected {datatype}")));
        }
        let mut values = Vec::new();
        flatten(tensor.get("data").ok_or_else(|| bad_request(format!("input {name} has no data")))?, &mut values);
        if let Some(shape) = tensor.get("shape").and_then(Value::as_array) {
            let elements: Option<u64> = shape.iter().map(Value::as_u64).product();
            if elements != Some(values.len() as u64) {
                return Err(bad_request(format!(
                    "input {name}: shape {shape:?} does not match {} data elements",
                    values.len()
                )));
            }
        }
        columns.push((name, values));
    }
    let n = columns[0].1.len();
    if let Some((name, values)) = columns.iter().find(|(_, v)| v.len() != n) {
        return Err(bad_request(format!("input {name} has {} rows, BASKET_SIZE has {n}", values.len())));
    }
    if n == 0 || n > max_rows {
        return Err(bad_request(format!("inputs must have 1 to {max_rows} rows, got {n}")));
    }
    let records = (0..n)
        .map(|row| {
            Value::Object(
                columns.iter().map(|(name, values)| ((*name).to_owned(), values[row].clone())).collect::<Map<_, _>>(),
            )
        })
        .collect();
    Ok((records, n))
}
