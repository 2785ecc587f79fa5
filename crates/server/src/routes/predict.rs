//! `POST /predict` (one basket, the seed's flat record or `{"basket_items": {...}}`) and
//! `POST /predict/batch`: content-type checks, the scoring module (on the blocking pool, under a
//! scoring slot, for anything but a small single record), and the HTTP answer. Also the helpers
//! every scoring route shares.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::edge::request_id::RequestId;
use crate::routes::Scored;
use crate::routes::explain::{Explain, ExplainParam};
use crate::schema::{BatchRequest, BatchResponse, PredictAnswer, PredictRequest, TabularRequest};
use crate::scoring::{self, BatchAnswers, Cancel, ErrorsMode, ScoreError};
use crate::{ApiError, AppState, LoadedModel, ModelSlot};

/// A single-record body up to this size is scored on the runtime thread: the scoring slot and
/// the hop to the blocking pool would cost more than the parse. Larger ones (a 1 MiB
/// `basket_items` list) go to the blocking pool like batches.
const INLINE_BODY_BYTES: usize = 16 * 1024;

/// An explanation of at most this many steps ([`retail_model::explain::Explainer::row_steps`],
/// about 100 µs) is computed on the runtime thread too: the hop to the blocking pool and back
/// cost about as much again (the shipped model's explanation: 17,200 steps, 44 µs at the median).
const INLINE_EXPLAIN_STEPS: usize = 32_000;

/// Scores one record with the default model: a basket (the seed's flat record or its
/// `basket_items` shape), or a day of sales (`{"features": {...}}`). A body of another kind than
/// the default model's is scored by the one loaded model of that kind.
#[utoipa::path(post, path = "/predict", tag = "predict",
    params(ExplainParam),
    request_body(content = PredictRequest, content_type = "application/json"),
    responses((status = 200, description = "the prediction: a basket's class and probabilities, or a forecast of units", body = PredictAnswer)))]
pub async fn predict(State(state): State<Arc<AppState>>, request: Request) -> Result<Response, ApiError> {
    predict_with(&state, None, request).await
}

/// Scores one record with the model `name`.
#[utoipa::path(post, path = "/models/{name}/predict", tag = "predict", operation_id = "model_predict",
    params(("name" = String, Path, description = "a configured model (GET /models)"), ExplainParam),
    request_body(content = PredictRequest, content_type = "application/json"),
    responses((status = 200, description = "the prediction: a basket's class and probabilities, or a forecast of units", body = PredictAnswer)))]
pub async fn model_predict(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    predict_with(&state, Some(state.models().named(&name)?), request).await
}

/// Scores one tabular row (seed 001): `{"features": [v1, …, vn]}` in column order or
/// `{"features": {"col": v, …}}` by name, `null` a missing value; with the model `?model=`
/// names, else the default model if it is tabular, else the one tabular model served.
#[utoipa::path(post, path = "/predict-single", tag = "predict", operation_id = "predict_single",
    params(ModelParam, ExplainParam),
    request_body(content = TabularRequest, content_type = "application/json"),
    responses((status = 200, description = "the prediction: a class and its probabilities (tabular classifier) or a number (tabular regressor), with warnings for unseen categories and numbers outside the training range", body = PredictAnswer)))]
pub async fn predict_single(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    request: Request,
) -> Result<Response, ApiError> {
    let slot = state.models().tabular(query_param(&uri, "model"))?;
    predict_with(&state, Some(slot), request).await
}

/// The `model` query parameter of `/predict-single`.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ModelParam {
    /// The tabular model to use (GET /models); needed when several are served and the default
    /// model is not one of them.
    #[param(inline, value_type = Option<String>)]
    model: Option<String>,
}

/// The value of the query parameter `name` (the last one given), if any.
pub fn query_param<'u>(uri: &'u Uri, name: &str) -> Option<&'u str> {
    let pairs = uri.query().unwrap_or_default().rsplit('&');
    pairs.filter_map(|pair| pair.split_once('=')).find(|(key, _)| *key == name).map(|(_, value)| value)
}

/// Scores one record with the model serving in `slot` (`None`: the default, or the model the
/// body's shape is for, [`crate::Models::for_body`]).
async fn predict_with(state: &Arc<AppState>, slot: Option<&ModelSlot>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let id = crate::edge::request_id::id_of(parts.extensions.get());
    let limit = state.config.max_body_bytes;
    check_json(&parts.headers)?;
    let explain = super::explain::asked(&parts.uri, &parts.extensions)?;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge(limit))?;
    let model = slot.unwrap_or_else(|| state.models().for_body(&bytes)).serving()?;
    // A large body or a costly explanation goes off the runtime, under a scoring slot.
    let scored = if bytes.len() <= INLINE_BODY_BYTES && (!explain || explains_inline(&model.artifact)) {
        answer_json(&model, &bytes, id, explain)
    } else {
        let (worker, id) = (model.clone(), id.to_owned());
        off_the_runtime(state, move |_| answer_json(&worker, &bytes, &id, explain)).await?
    };
    Ok(match scored {
        Ok(json) => with_scored(([(header::CONTENT_TYPE, JSON)], json), &model, 1),
        Err(e) => with_scored(ApiError::from(e), &model, 0),
    })
}

/// `application/json`, as a header value.
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Whether the model's one-row explanation is cheap enough for the runtime thread (an artifact
/// without covers answers its 409 there too).
fn explains_inline(artifact: &retail_model::artifact::Artifact) -> bool {
    artifact.explainer.as_ref().map_or(true, |e| e.row_steps().is_some_and(|steps| steps <= INLINE_EXPLAIN_STEPS))
}

/// Scores one body (explained when `explain`) and writes its answer straight to JSON bytes.
fn answer_json(model: &LoadedModel, body: &[u8], request_id: &str, explain: bool) -> Result<Vec<u8>, ScoreError> {
    scoring::score_one(model, body, explain).map(|answer| answer.with_request_id(request_id).to_json())
}

/// Scores many baskets in one call (up to the configured row limit), answers in request order.
#[utoipa::path(post, path = "/predict/batch", tag = "predict",
    request_body(content = BatchRequest, content_type = "application/json"),
    params(ErrorsParam, ExplainParam),
    responses((status = 200, description = "one answer per record, in request order. By default any invalid record fails the batch (422, its fields listed as records[i].FIELD); with `errors=inline` (or `options.errors` in the body) each invalid record is answered in its place", body = BatchResponse)))]
pub async fn batch(
    State(state): State<Arc<AppState>>,
    RequestId(id): RequestId,
    Explain(explain): Explain,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    batch_with(&state, None, (id, uri, headers, explain), body).await
}

/// Scores many records with the model `name` (as `/predict/batch` does with the default one).
#[utoipa::path(post, path = "/models/{name}/predict/batch", tag = "predict", operation_id = "model_predict_batch",
    params(("name" = String, Path, description = "a configured model (GET /models)"), ErrorsParam, ExplainParam),
    request_body(content = BatchRequest, content_type = "application/json"),
    responses((status = 200, description = "one answer per record, in request order (see /predict/batch for `errors=inline`)", body = BatchResponse)))]
pub async fn model_batch(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    RequestId(id): RequestId,
    Explain(explain): Explain,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    batch_with(&state, Some(state.models().named(&name)?), (id, uri, headers, explain), body).await
}

/// Scores a batch with the model serving in `slot` (`None`: as for [`predict_with`]); `request`
/// is the request id, URI, headers and whether explanations were asked for.
async fn batch_with(
    state: &Arc<AppState>,
    slot: Option<&ModelSlot>,
    request: (String, Uri, HeaderMap, bool),
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let (id, uri, headers, explain) = request;
    check_json(&headers)?;
    let mode = errors_mode(&uri)?;
    let bytes = body_bytes(body, state.config.max_batch_body_bytes)?;
    let model = slot.unwrap_or_else(|| state.models().for_body(&bytes)).serving()?;
    let (worker, max_rows) = (model.clone(), state.config.max_batch_rows);
    let scored =
        off_the_runtime(state, move |cancel| scoring::score_batch(&*worker, &bytes, (max_rows, mode), explain, cancel))
            .await?;
    Ok(batch_answer(&model, scored, id))
}

/// The `errors` query parameter of the batch routes.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ErrorsParam {
    /// `all_or_nothing` (default): an invalid record fails the batch with 422. `inline`: valid
    /// records are scored and each invalid one is answered in its place with its errors.
    #[param(inline, value_type = Option<String>, pattern = "^(inline|all_or_nothing)$")]
    errors: Option<String>,
}

/// How a batch call wants invalid records handled (`?errors=inline|all_or_nothing`).
pub fn errors_mode(uri: &Uri) -> Result<ErrorsMode, ApiError> {
    let Some(value) = query_param(uri, "errors") else { return Ok(ErrorsMode::AllOrNothing) };
    ErrorsMode::parse(value).map_err(|reason| {
        let mut errors = scoring::FieldErrors::default();
        errors.field("errors", || reason);
        ApiError::Invalid(errors)
    })
}

/// Scores many baskets (alias of `/predict/batch`).
#[utoipa::path(post, path = "/batch-predict", tag = "predict",
    request_body(content = BatchRequest, content_type = "application/json"),
    params(ErrorsParam, ExplainParam),
    responses((status = 200, description = "one answer per record, in request order (see /predict/batch for `errors=inline`)", body = BatchResponse)))]
pub async fn batch_alias(
    state: State<Arc<AppState>>,
    id: RequestId,
    explain: Explain,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    batch(state, id, explain, uri, headers, body).await
}

/// The JSON answer of a batch (`/predict/batch`, `/invocations`), with what it scored.
pub fn batch_answer(
    model: &Arc<LoadedModel>,
    scored: Result<BatchAnswers, ScoreError>,
    request_id: String,
) -> Response {
    match scored {
        Ok(BatchAnswers { items, failed }) => {
            let rows = items.len() - failed;
            let version = model.artifact.manifest.version.clone();
            let answer = BatchResponse { predictions: items, failed, model_version: version, request_id };
            with_scored(Json(answer), model, rows)
        }
        Err(e) => with_scored(ApiError::from(e), model, 0),
    }
}

/// `response` with the [`Scored`] extension the access log reads.
pub fn with_scored(response: impl IntoResponse, model: &Arc<LoadedModel>, rows: usize) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(Scored { model: model.clone(), rows });
    response
}

impl From<ScoreError> for ApiError {
    fn from(e: ScoreError) -> Self {
        match e {
            ScoreError::Malformed(message) | ScoreError::Request(message) => Self::MalformedJson(message),
            ScoreError::Invalid(errors) => Self::Invalid(errors),
            ScoreError::Cancelled => Self::Internal("scoring was cancelled".to_owned()),
            ScoreError::Explain(e) => Self::ExplanationUnavailable(e.to_string()),
            ScoreError::ExplainNotAllowed => Self::InsufficientScope(crate::auth::Scope::Explain),
            wrong @ ScoreError::WrongModel { .. } => {
                let mut errors = crate::scoring::FieldErrors::default();
                errors.field("body", || wrong.to_string());
                Self::Invalid(errors)
            }
        }
    }
}

/// 415 unless the request declares a JSON body.
pub fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if is_json { Ok(()) } else { Err(ApiError::UnsupportedMediaType) }
}

/// The body, or the error its rejection means (413 over the limit, 400 otherwise).
pub fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit),
        _ => ApiError::MalformedJson(rejection.body_text()),
    })
}

/// Scoring slots: how many scoring calls run on the blocking pool at once, 2 per core (one
/// computing while another is between chunks or building its answer). Requests beyond wait for a
/// slot within their timeout; the blocking pool never grows past this for scoring.
pub fn scoring_slots() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from) * 2
}

/// Runs CPU-heavy scoring on the blocking pool, keeping the async workers free. It waits for a
/// scoring slot first; the slot moves into the blocking task, so it is released only when the
/// work has really stopped. If this future is dropped (the request timed out or its client
/// left), the work's [`Cancel`] flag is set and the work stops at its next check.
pub async fn off_the_runtime<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Cancel) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let slot =
        state.scoring.clone().acquire_owned().await.map_err(|_| ApiError::Internal("no scoring slots".to_owned()))?;
    let cancel = Cancel::default();
    let _cancel_on_drop = cancel.on_drop();
    let task = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work(&cancel)
    });
    task.await.map_err(|e| ApiError::Internal(format!("scoring worker failed: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use axum::body::Body;
    use retail_model::artifact::{Artifact, ModelKind};
    use tower::ServiceExt;

    use super::*;
    use crate::{ModelSource, ServerConfig, router};

    #[test]
    fn the_shipped_models_explanation_runs_inline_and_a_recursive_one_would_not() {
        let artifact = Artifact::embedded_default().expect("model");
        assert!(explains_inline(&artifact), "17,200 steps");
        let steps = artifact.explainer.as_ref().ok().and_then(|e| e.row_steps()).expect("tabled");
        assert!(steps * 2 > INLINE_EXPLAIN_STEPS, "a model twice its size would go to the blocking pool");
    }

    fn state() -> Arc<AppState> {
        let artifact = Artifact::embedded_default().expect("embedded model");
        Arc::new(AppState::new(artifact, ModelSource::Embedded(ModelKind::BasketClassifier), ServerConfig::default()))
    }

    const SEED: &str = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;

    async fn scored(state: &Arc<AppState>, path: &str, body: String) -> (StatusCode, Option<usize>) {
        let request = axum::http::Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("request");
        let response = router(state.clone()).oneshot(request).await.expect("response");
        let scored = response.extensions().get::<Scored>().map(|s| {
            assert!(Arc::ptr_eq(&s.model, &state.serving().expect("model")), "the model that scored");
            s.rows
        });
        (response.status(), scored)
    }

    #[tokio::test]
    async fn scoring_answers_carry_the_model_and_the_rows_scored() {
        let s = state();
        let batch = format!("{{\"records\":[{}]}}", [SEED; 3].join(","));
        assert_eq!(scored(&s, "/predict/batch", batch.clone()).await, (StatusCode::OK, Some(3)));
        assert_eq!(scored(&s, "/invocations", batch).await, (StatusCode::OK, Some(3)));
        assert_eq!(scored(&s, "/predict", SEED.to_owned()).await, (StatusCode::OK, Some(1)));
        let invalid = r#"{"records":[{"SPEND":-1}]}"#.to_owned();
        assert_eq!(scored(&s, "/predict/batch", invalid).await, (StatusCode::UNPROCESSABLE_ENTITY, Some(0)));
        let v2 = r#"{"inputs":[]}"#.to_owned();
        let infer = "/v2/models/retail-price-sensitivity/infer";
        assert_eq!(scored(&s, infer, v2).await, (StatusCode::BAD_REQUEST, Some(0)));
    }

    #[tokio::test]
    async fn abandoned_work_is_cancelled_and_keeps_its_slot_until_it_stops() {
        let s = state();
        let slots = scoring_slots();
        assert_eq!(s.scoring.available_permits(), slots);
        let stopped = Arc::new(AtomicBool::new(false));
        let seen = stopped.clone();
        let work = off_the_runtime(&s, move |cancel| {
            let start = Instant::now();
            while !cancel.is_cancelled() && start.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            seen.store(cancel.is_cancelled(), Ordering::SeqCst);
        });
        // The request times out: the awaiting future is dropped.
        assert!(tokio::time::timeout(Duration::from_millis(50), work).await.is_err());
        assert_eq!(s.scoring.available_permits(), slots - 1, "the slot is held while the work runs on");
        let start = Instant::now();
        while s.scoring.available_permits() < slots {
            assert!(start.elapsed() < Duration::from_secs(10), "the work stopped");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(stopped.load(Ordering::SeqCst), "the work saw the cancellation");
    }
}
