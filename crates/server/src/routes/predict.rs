//! `POST /predict` (one basket, the seed's flat record or `{"basket_items": {...}}`) and
//! `POST /predict/batch`. Both shapes go through the shared feature pipeline; unknown categories
//! are scored as unseen and reported in `warnings`.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use retail_model::artifact::Artifact;
use retail_model::features::{
    BasketItem, BasketRecord, Encoded, FEATURE_NAMES, FIRST_CATEGORICAL, FeaturePipeline, FieldError, N_CATEGORICAL,
    StoreContext, Unseen,
};
use retail_model::metrics::argmax;
use serde_json::{Map, Value};

use crate::edge::request_id::RequestId;
use crate::schema::{BatchRequest, BatchResponse, ErrorBody, PredictRequest, PredictionResponse};
use crate::{ApiError, AppState, LoadedModel};

/// The flat record's categorical fields, in [`BasketRecord::categories`] order.
const CATEGORY_FIELDS: [&str; N_CATEGORICAL] = {
    let mut names = [""; N_CATEGORICAL];
    let mut i = 0;
    while i < N_CATEGORICAL {
        names[i] = FEATURE_NAMES[FIRST_CATEGORICAL + i];
        i += 1;
    }
    names
};

/// Scores one basket: the seed's flat record or its `basket_items` shape.
#[utoipa::path(post, path = "/predict", tag = "predict",
    request_body(content = PredictRequest, content_type = "application/json"),
    responses(
        (status = 200, body = PredictionResponse),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "invalid fields, each listed", body = ErrorBody),
        (status = 429, description = "too many concurrent requests", body = ErrorBody),
    ))]
pub async fn predict(State(state): State<Arc<AppState>>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let id = Some(crate::edge::request_id::id_of(parts.extensions.get()).to_owned());
    let limit = state.config.max_body_bytes;
    check_json(&parts.headers)?;
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| ApiError::PayloadTooLarge(limit))?;
    let model = state.serving()?;
    let artifact = &model.artifact;
    // Fast path: a well-formed flat record, read without building a JSON tree. Anything else
    // (basket_items, or an error to explain field by field) takes the general path.
    let (p, unseen) = match serde_json::from_slice::<FlatRecord>(&bytes) {
        Ok(flat) if flat.basket_items.is_none() => {
            let encoded = artifact.pipeline.encode(&flat.record()).map_err(|e| ApiError::Invalid(e.errors))?;
            (probabilities(artifact, &encoded.features), encoded.unseen)
        }
        _ => {
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
            let encoded = encode_json(&artifact.pipeline, &value).map_err(ApiError::Invalid)?;
            (probabilities(artifact, &encoded.features), encoded.unseen)
        }
    };
    let mut prediction = answer(artifact, &p, &unseen);
    model.counters.record(argmax(&p), &unseen);
    prediction.request_id = id;
    Ok(scored(Json(prediction), model, 1))
}

/// The seed's flat record, borrowed from the request body.
#[derive(serde::Deserialize)]
#[allow(non_snake_case)]
struct FlatRecord<'a> {
    SPEND: f64,
    QUANTITY: f64,
    #[serde(borrow)]
    PROD_CODE_20: Cow<'a, str>,
    #[serde(borrow)]
    PROD_CODE_30: Cow<'a, str>,
    #[serde(borrow)]
    BASKET_SIZE: Cow<'a, str>,
    #[serde(borrow)]
    BASKET_TYPE: Cow<'a, str>,
    #[serde(borrow)]
    STORE_REGION: Cow<'a, str>,
    #[serde(borrow)]
    STORE_FORMAT: Cow<'a, str>,
    basket_items: Option<serde::de::IgnoredAny>,
}

impl FlatRecord<'_> {
    fn record(&self) -> BasketRecord<&str> {
        BasketRecord {
            spend: self.SPEND,
            quantity: self.QUANTITY,
            prod_code_20: &self.PROD_CODE_20,
            prod_code_30: &self.PROD_CODE_30,
            basket_size: &self.BASKET_SIZE,
            basket_type: &self.BASKET_TYPE,
            store_region: &self.STORE_REGION,
            store_format: &self.STORE_FORMAT,
        }
    }
}

fn probabilities(artifact: &Artifact, features: &[f64]) -> Vec<f64> {
    let mut p = vec![0.0; artifact.engine.n_classes()];
    artifact.engine.predict_proba(features, &mut p);
    p
}

/// Scores many baskets in one call (up to the configured row limit), answers in request order.
#[utoipa::path(post, path = "/predict/batch", tag = "predict",
    request_body(content = BatchRequest, content_type = "application/json"),
    responses(
        (status = 200, body = BatchResponse),
        (status = 400, description = "malformed JSON", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 415, description = "not application/json", body = ErrorBody),
        (status = 422, description = "invalid records, each field listed as records[i].FIELD", body = ErrorBody),
        (status = 429, description = "too many concurrent requests", body = ErrorBody),
    ))]
pub async fn batch(
    State(state): State<Arc<AppState>>,
    RequestId(id): RequestId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    check_json(&headers)?;
    let bytes = body_bytes(body, state.config.max_batch_body_bytes)?;
    let model = state.serving()?;
    let (worker, max_rows) = (model.clone(), state.config.max_batch_rows);
    let predictions = off_the_runtime(move || score_batch_bytes(&worker, max_rows, &bytes)).await??;
    let rows = predictions.len();
    let answer = BatchResponse { predictions, model_version: model.artifact.manifest.version.clone(), request_id: id };
    Ok(scored(Json(answer), model, rows))
}

/// An answer carrying what it scored, for the access log.
fn scored(answer: impl IntoResponse, model: Arc<LoadedModel>, rows: usize) -> Response {
    let mut response = answer.into_response();
    response.extensions_mut().insert(crate::routes::Scored { model, rows });
    response
}

/// Scores many baskets (alias of `/predict/batch`).
#[utoipa::path(post, path = "/batch-predict", tag = "predict",
    request_body(content = BatchRequest, content_type = "application/json"),
    responses((status = 200, body = BatchResponse), (status = 422, body = ErrorBody)))]
pub async fn batch_alias(
    state: State<Arc<AppState>>,
    id: RequestId,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    batch(state, id, headers, body).await
}

/// Scores the `records` of a batch body; every invalid field of every record is listed.
/// Scores a batch body. Fast path: every record a well-formed flat record, read without a JSON
/// tree; anything else takes the general path, which explains every invalid field.
fn score_batch_bytes(model: &LoadedModel, max_rows: usize, bytes: &[u8]) -> Result<Vec<PredictionResponse>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        records: Vec<FlatRecord<'a>>,
    }
    if let Ok(batch) = serde_json::from_slice::<Batch<'_>>(bytes) {
        let n = batch.records.len();
        if (1..=max_rows).contains(&n) && batch.records.iter().all(|r| r.basket_items.is_none()) {
            let pipeline = &model.artifact.pipeline;
            let encoded = batch.records.iter().map(|r| pipeline.encode(&r.record()).map_err(|e| e.errors));
            return score_encoded(model, encoded).map_err(ApiError::Invalid);
        }
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    score_batch(model, max_rows, &value)
}

/// Scores a batch body already parsed (`{"records": [...]}`).
pub fn score_batch(model: &LoadedModel, max_rows: usize, value: &Value) -> Result<Vec<PredictionResponse>, ApiError> {
    let records = match value.get("records") {
        Some(Value::Array(records)) => records,
        Some(other) => {
            return Err(ApiError::Invalid(invalid("records", &format!("must be an array, got {}", kind(other)))));
        }
        None => return Err(ApiError::Invalid(invalid("records", "is required"))),
    };
    check_rows(records.len(), max_rows)?;
    score_records(model, records).map_err(ApiError::Invalid)
}

/// 422 unless a batch holds between 1 and `limit` records.
pub fn check_rows(n: usize, limit: usize) -> Result<(), ApiError> {
    if (1..=limit).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::Invalid(invalid("records", &format!("must hold 1 to {limit} records, got {n}"))))
    }
}

/// Scores records (each a `/predict` body) together; every invalid field of every record is
/// listed as `records[i].FIELD`. Shared by batch, inference protocol v2 and SageMaker routes.
pub fn score_records(model: &LoadedModel, records: &[Value]) -> Result<Vec<PredictionResponse>, Vec<FieldError>> {
    let pipeline = &model.artifact.pipeline;
    score_encoded(model, records.iter().map(|r| encode_json(pipeline, r)))
}

/// Scores encoded records, or lists every invalid field of every record as `records[i].FIELD`.
fn score_encoded(
    model: &LoadedModel,
    encoded: impl ExactSizeIterator<Item = Result<Encoded, Vec<FieldError>>>,
) -> Result<Vec<PredictionResponse>, Vec<FieldError>> {
    let mut rows = Vec::with_capacity(encoded.len() * retail_model::features::N_FEATURES);
    let mut unseen = Vec::with_capacity(encoded.len());
    let mut errors = Vec::new();
    for (i, result) in encoded.enumerate() {
        match result {
            Ok(e) => {
                rows.extend_from_slice(&e.features);
                unseen.push(e.unseen);
            }
            Err(fields) => errors.extend(
                fields.into_iter().map(|f| FieldError { field: format!("records[{i}].{}", f.field), reason: f.reason }),
            ),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(score_rows(model, &rows, unseen))
}

/// Scores encoded rows (on all cores) and builds their answers, counting them in the metrics.
fn score_rows(model: &LoadedModel, rows: &[f64], unseen: Vec<Vec<Unseen>>) -> Vec<PredictionResponse> {
    let engine = &model.artifact.engine;
    let mut probabilities = vec![0.0; unseen.len() * engine.n_classes()];
    engine.predict_batch_parallel(rows, &mut probabilities);
    probabilities
        .chunks(engine.n_classes())
        .zip(unseen)
        .map(|(p, unseen)| {
            model.counters.record(argmax(p), &unseen);
            answer(&model.artifact, p, &unseen)
        })
        .collect()
}

/// Scores one `/predict` body (the flat record or the `basket_items` shape); shared by the API
/// and offline `retail-api predict`.
pub fn score(artifact: &Artifact, value: &Value) -> Result<PredictionResponse, Vec<FieldError>> {
    let encoded = encode_json(&artifact.pipeline, value)?;
    Ok(answer(artifact, &probabilities(artifact, &encoded.features), &encoded.unseen))
}

/// A `/predict` body as model features, or every invalid field.
fn encode_json(pipeline: &FeaturePipeline, value: &Value) -> Result<Encoded, Vec<FieldError>> {
    let record = record_from_json(pipeline, value)?;
    pipeline.encode(&record).map_err(|e| e.errors)
}

/// The answer for one basket's probabilities.
fn answer(artifact: &Artifact, p: &[f64], unseen: &[Unseen]) -> PredictionResponse {
    let m = &artifact.manifest;
    let best = &m.classes[argmax(p)];
    PredictionResponse {
        prediction: best.code.clone(),
        label: best.label.clone(),
        probabilities: m.classes.iter().zip(p).map(|(c, &p)| (c.code.clone(), p)).collect(),
        model_version: m.version.clone(),
        request_id: None,
        warnings: unseen
            .iter()
            .map(|u| {
                if u.value.is_empty() {
                    format!("{}: not provided; scored as unseen", u.field)
                } else {
                    format!("{}: unknown value {:?}; scored as unseen", u.field, u.value)
                }
            })
            .collect(),
    }
}

/// Reads a `/predict` body into a record, listing every missing, mistyped or out-of-range field.
pub fn record_from_json(pipeline: &FeaturePipeline, value: &Value) -> Result<BasketRecord, Vec<FieldError>> {
    let Value::Object(object) = value else {
        return Err(invalid("body", "must be a JSON object"));
    };
    let Some(items) = object.get("basket_items") else {
        return parse_flat(object);
    };
    let (items, store, mut errors) = parse_items(items, object)?;
    // Range checks run even when some fields had the wrong type, so one answer lists all.
    match pipeline.record_from_items(items.iter().map(|(k, i)| (k.as_str(), i)), &store) {
        Ok(record) if errors.is_empty() => Ok(record),
        Ok(_) => Err(errors),
        Err(invalid) => {
            errors.extend(invalid.errors);
            Err(errors)
        }
    }
}

fn invalid(field: &str, reason: &str) -> Vec<FieldError> {
    vec![FieldError { field: field.to_owned(), reason: reason.to_owned() }]
}

/// 415 unless the request declares a JSON body.
fn check_json(headers: &HeaderMap) -> Result<(), ApiError> {
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

/// Runs CPU-heavy scoring on the blocking pool, keeping the async workers free.
pub async fn off_the_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(format!("scoring worker failed: {e}")))
}

/// The JSON value of a body declared as JSON.
pub fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Value, ApiError> {
    check_json(headers)?;
    let body = body_bytes(body, limit)?;
    serde_json::from_slice(&body).map_err(|e| ApiError::MalformedJson(e.to_string()))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads `object[field]` with `extract`; a wrong type, or a missing required field, is recorded
/// under `path` in `errors`.
fn field<T>(
    object: &Map<String, Value>,
    (field, path): (&str, &str),
    required: bool,
    (expected, extract): (&str, fn(&Value) -> Option<T>),
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    let reason = match object.get(field) {
        None | Some(Value::Null) if !required => return None,
        None | Some(Value::Null) => "is required".to_owned(),
        Some(value) => match extract(value) {
            Some(v) => return Some(v),
            None => format!("must be {expected}, got {}", kind(value)),
        },
    };
    errors.push(FieldError { field: path.to_owned(), reason });
    None
}

const NUMBER: (&str, fn(&Value) -> Option<f64>) = ("a number", Value::as_f64);
const STRING: (&str, fn(&Value) -> Option<String>) = ("a string", |v| v.as_str().map(str::to_owned));

fn parse_flat(object: &Map<String, Value>) -> Result<BasketRecord, Vec<FieldError>> {
    let mut errors = Vec::new();
    let spend = field(object, ("SPEND", "SPEND"), true, NUMBER, &mut errors);
    let quantity = field(object, ("QUANTITY", "QUANTITY"), true, NUMBER, &mut errors);
    let categories = CATEGORY_FIELDS.map(|f| field(object, (f, f), true, STRING, &mut errors).unwrap_or_default());
    let [prod_code_20, prod_code_30, basket_size, basket_type, store_region, store_format] = categories;
    // Range checks of the numbers that did parse, so one answer lists every problem.
    let record = BasketRecord {
        spend: spend.unwrap_or(0.0),
        quantity: quantity.unwrap_or(1.0),
        prod_code_20,
        prod_code_30,
        basket_size,
        basket_type,
        store_region,
        store_format,
    };
    if let Err(invalid) = record.validate() {
        errors.extend(invalid.errors);
    }
    if errors.is_empty() { Ok(record) } else { Err(errors) }
}

/// Items (keyed by their id), the store fields, and the type errors found while reading them.
type ParsedItems = (Vec<(String, BasketItem)>, StoreContext, Vec<FieldError>);

/// `basket_items` as an object keyed by item id (the seed's shape) or as an array.
fn parse_items(items: &Value, object: &Map<String, Value>) -> Result<ParsedItems, Vec<FieldError>> {
    let entries: Vec<(String, &Value)> = match items {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(list) => list.iter().enumerate().map(|(i, v)| (i.to_string(), v)).collect(),
        other => {
            return Err(invalid("basket_items", &format!("must be an object of items, got {}", kind(other))));
        }
    };
    let mut errors = Vec::new();
    let mut parsed = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let path = |f: &str| format!("basket_items.{key}.{f}");
        let Value::Object(item) = value else {
            errors.push(FieldError {
                field: format!("basket_items.{key}"),
                reason: format!("must be an object, got {}", kind(value)),
            });
            continue;
        };
        let quantity = field(item, ("quantity", &path("quantity")), true, NUMBER, &mut errors);
        let price = field(item, ("price", &path("price")), true, NUMBER, &mut errors);
        let category = field(item, ("category", &path("category")), false, STRING, &mut errors);
        let product_id = field(item, ("product_id", &path("product_id")), false, STRING, &mut errors);
        // A mistyped number is already reported; a neutral stand-in lets the other fields be checked.
        parsed.push((
            key,
            BasketItem { product_id, quantity: quantity.unwrap_or(1.0), price: price.unwrap_or(0.0), category },
        ));
    }
    let mut store = StoreContext::default();
    for (slot, names) in [
        (&mut store.store_region, ["STORE_REGION", "store_region"]),
        (&mut store.store_format, ["STORE_FORMAT", "store_format"]),
    ] {
        for name in names {
            if let Some(v) = field(object, (name, name), false, STRING, &mut errors) {
                *slot = Some(v);
            }
        }
    }
    if let Some(customer) = object.get("customer_id").filter(|c| !matches!(c, Value::String(_) | Value::Null)) {
        errors.push(FieldError {
            field: "customer_id".to_owned(),
            reason: format!("must be a string, got {}", kind(customer)),
        });
    }
    Ok((parsed, store, errors))
}
