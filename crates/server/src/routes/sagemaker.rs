//! The SageMaker hosting container contract: `GET /ping` and `POST /invocations`, so the same
//! image runs as a SageMaker endpoint. `/invocations` takes JSON like `/predict/batch`
//! (`{"records": [...]}`, a bare array of records, or one record) or `text/csv` rows of the flat
//! record's columns in the seed's order (a header row is optional); CSV answers are CSV unless
//! `Accept: application/json`.

use std::fmt::Write;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

use crate::edge::request_id::RequestId;
use crate::routes::predict::{
    ErrorsParam, batch_answer, body_bytes, check_json, errors_mode, off_the_runtime, with_scored,
};
use crate::schema::{BatchResponse, ErrorBody};
use crate::scoring::{self, BatchAnswers, BatchItem, ErrorsMode};
use crate::{ApiError, AppState, LoadedModel, ModelSlot};

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
    params(ErrorsParam),
    responses((status = 200, description = "predictions: JSON like /predict/batch for a JSON body; CSV rows `prediction,P_LA,P_MM,P_UM` for a CSV body (with `errors=inline`, a last column `error`)", content(
        (BatchResponse = "application/json"),
        (String = "text/csv", example = "prediction,P_LA,P_MM,P_UM\nUM,0.0006,0.0047,0.9947"),
    ))))]
pub async fn invocations(
    State(state): State<Arc<AppState>>,
    RequestId(id): RequestId,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    let csv = content_type.starts_with("text/csv");
    if !csv {
        check_json(&headers)?;
    }
    let wants_json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    let mode = errors_mode(&uri)?;
    let body = body_bytes(body, state.config.max_batch_body_bytes)?;
    let model = target_model(&state, &headers)?.serving()?;
    let limits = (state.config.max_batch_rows, mode);
    let worker = model.clone();
    let scored = off_the_runtime(&state, move |cancel| {
        if csv {
            scoring::score_csv(&*worker, &body, limits, false, cancel)
        } else {
            scoring::score_invocations(&*worker, &body, limits, false, cancel)
        }
    })
    .await?;
    Ok(match scored {
        Ok(answers) if csv && !wants_json => {
            let rows = answers.items.len() - answers.failed;
            let csv = csv_answer(&model, &answers, mode);
            with_scored(([(header::CONTENT_TYPE, "text/csv")], csv), &model, rows)
        }
        scored => batch_answer(&model, scored, id),
    })
}

/// SageMaker's multi-model header: `X-Amzn-SageMaker-Target-Model` names the model to use (the
/// default one without it).
const TARGET_MODEL: &str = "x-amzn-sagemaker-target-model";

/// The model `/invocations` scores with: the one the target-model header names, else the default.
fn target_model<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<&'a Arc<ModelSlot>, ApiError> {
    match headers.get(TARGET_MODEL) {
        None => Ok(state.models().default_slot()),
        Some(value) => state.models().named(&String::from_utf8_lossy(value.as_bytes())),
    }
}

/// CSV rows `prediction,P_LA,P_MM,P_UM` (classes in model order; a regression: `prediction`
/// alone); with inline errors a last column `error` is empty for scored rows, and names the
/// invalid fields of the others.
fn csv_answer(model: &LoadedModel, answers: &BatchAnswers, mode: ErrorsMode) -> String {
    let classes = if scoring::is_regression(&model.artifact) { &[][..] } else { &model.artifact.manifest.classes[..] };
    let inline = mode == ErrorsMode::Inline;
    let mut out = String::with_capacity(64 * (answers.items.len() + 1));
    out.push_str("prediction");
    for c in classes {
        let _ = write!(out, ",P_{}", c.code);
    }
    out.push_str(if inline { ",error\n" } else { "\n" });
    for item in &answers.items {
        match item {
            BatchItem::Scored(p) => {
                out.push_str(&p.prediction);
                for c in classes {
                    let _ = write!(out, ",{}", p.probabilities.get(&c.code).copied().unwrap_or(f64::NAN));
                }
                out.push_str(if inline { ",\n" } else { "\n" });
            }
            BatchItem::Forecast(f) => {
                let _ = write!(out, "{}", f.prediction);
                out.push_str(if inline { ",\n" } else { "\n" });
            }
            BatchItem::Failed(failed) => {
                out.push_str(&",".repeat(classes.len()));
                let fields: Vec<String> = failed.details.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect();
                let _ = writeln!(out, ",\"{}\"", fields.join("; ").replace('"', "\"\""));
            }
        }
    }
    out
}
