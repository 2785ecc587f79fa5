//! The SageMaker hosting container contract: `GET /ping` and `POST /invocations`, so the same
//! image runs as a SageMaker endpoint. `/invocations` takes JSON like `/predict/batch`
//! (`{"records": [...]}`, a bare array of records, or one record) or `text/csv` rows of the flat
//! record's columns in the seed's order (a header row is optional); CSV answers are CSV unless
//! `Accept: application/json`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::edge::request_id::RequestId;
use crate::routes::predict::{body_bytes, check_rows, off_the_runtime, score_batch, score_records};
use crate::schema::{BatchResponse, ErrorBody, PredictionResponse};
use crate::{ApiError, AppState, LoadedModel};

/// CSV columns of `/invocations`, the seed's field order.
pub const CSV_COLUMNS: [&str; 8] =
    ["BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT", "SPEND", "QUANTITY", "PROD_CODE_20", "PROD_CODE_30"];

/// SageMaker health check: 200 when ready.
#[utoipa::path(get, path = "/ping", tag = "sagemaker", responses((status = 200, description = "ready"), (status = 503, description = "not ready", body = ErrorBody)))]
pub async fn ping(State(state): State<Arc<AppState>>) -> Result<StatusCode, ApiError> {
    if state.is_ready() { Ok(StatusCode::OK) } else { Err(ApiError::NotReady("no model loaded, or shutting down")) }
}

/// SageMaker inference: JSON records or CSV rows.
#[utoipa::path(post, path = "/invocations", tag = "sagemaker",
    request_body(content(
        (crate::schema::BatchRequest = "application/json"),
        (String = "text/csv", example = "M,MIXED,LONDON,LS,125.50,3,FOOD,FRESH"),
    )),
    responses(
        (status = 200, description = "predictions: JSON like /predict/batch, or CSV rows `prediction,P_LA,P_MM,P_UM`", body = BatchResponse),
        (status = 415, description = "neither JSON nor CSV", body = ErrorBody),
        (status = 422, description = "invalid rows, each field listed", body = ErrorBody),
    ))]
pub async fn invocations(
    State(state): State<Arc<AppState>>,
    RequestId(id): RequestId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let model = state.serving()?;
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let wants_json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    let limit = state.config.max_batch_body_bytes;
    let (records, csv) = if content_type.starts_with("text/csv") {
        let body = body_bytes(body, limit)?;
        (csv_records(&body)?, true)
    } else {
        let value = crate::routes::predict::json_body(&headers, body, limit)?;
        let records = match value {
            Value::Array(records) => records,
            Value::Object(ref object) if object.contains_key("records") => {
                return batch_answer(&model, state.config.max_batch_rows, &value, id)
                    .await
                    .map(IntoResponse::into_response);
            }
            record @ Value::Object(_) => vec![record],
            other => {
                return Err(ApiError::Invalid(vec![retail_model::features::FieldError {
                    field: "body".to_owned(),
                    reason: format!("must be records, got {other}"),
                }]));
            }
        };
        (records, false)
    };
    check_rows(records.len(), state.config.max_batch_rows)?;
    let worker = model.clone();
    let predictions = off_the_runtime(move || score_records(&worker, &records)).await?.map_err(ApiError::Invalid)?;
    if csv && !wants_json {
        return Ok(([(header::CONTENT_TYPE, "text/csv")], csv_answer(&model, &predictions)).into_response());
    }
    Ok(Json(BatchResponse { predictions, model_version: model.artifact.manifest.version.clone(), request_id: id })
        .into_response())
}

async fn batch_answer(
    model: &Arc<LoadedModel>,
    max_rows: usize,
    value: &Value,
    id: String,
) -> Result<Json<BatchResponse>, ApiError> {
    let worker = model.clone();
    let value = value.clone();
    let predictions = off_the_runtime(move || score_batch(&worker, max_rows, &value)).await??;
    Ok(Json(BatchResponse { predictions, model_version: model.artifact.manifest.version.clone(), request_id: id }))
}

/// CSV rows → flat-record objects; numbers that do not parse stay strings so the record check
/// names them.
fn csv_records(body: &[u8]) -> Result<Vec<Value>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(body);
    let mut records = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| ApiError::MalformedJson(format!("CSV row {}: {e}", i + 1)))?;
        if i == 0 && row.get(0) == Some(CSV_COLUMNS[0]) {
            continue;
        }
        if row.len() != CSV_COLUMNS.len() {
            return Err(ApiError::Invalid(vec![retail_model::features::FieldError {
                field: format!("row {}", i + 1),
                reason: format!(
                    "has {} columns, expected {} ({})",
                    row.len(),
                    CSV_COLUMNS.len(),
                    CSV_COLUMNS.join(",")
                ),
            }]));
        }
        let object: Map<String, Value> = CSV_COLUMNS
            .iter()
            .zip(row.iter())
            .map(|(column, cell)| {
                let value = match (*column, cell.parse::<f64>()) {
                    ("SPEND" | "QUANTITY", Ok(number)) if number.is_finite() => Value::from(number),
                    _ => Value::from(cell),
                };
                ((*column).to_owned(), value)
            })
            .collect();
        records.push(Value::Object(object));
    }
    Ok(records)
}

fn csv_answer(model: &LoadedModel, predictions: &[PredictionResponse]) -> String {
    let classes = &model.artifact.manifest.classes;
    let mut out =
        format!("prediction,{}\n", classes.iter().map(|c| format!("P_{}", c.code)).collect::<Vec<_>>().join(","));
    for p in predictions {
        let probabilities: Vec<String> = classes.iter().map(|c| p.probabilities[&c.code].to_string()).collect();
        out.push_str(&format!("{},{}\n", p.prediction, probabilities.join(",")));
    }
    out
}
