//! `POST /predict` (one basket, the seed's flat record or `{"basket_items": {...}}`) and
//! `POST /predict/batch`. Both shapes go through the shared feature pipeline; unknown categories
//! are scored as unseen and reported in `warnings`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use retail_model::artifact::Artifact;
use retail_model::features::{
    BasketItem, BasketRecord, FEATURE_NAMES, FIRST_CATEGORICAL, FeaturePipeline, FieldError, N_CATEGORICAL,
    StoreContext, Unseen,
};
use retail_model::metrics::argmax;
use serde_json::{Map, Value};

use crate::middleware::RequestId;
use crate::schema::{BatchRequest, BatchResponse, ErrorBody, PredictRequest, PredictionResponse};
use crate::{ApiError, AppState};

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
pub async fn predict(
    State(state): State<Arc<AppState>>,
    Extension(RequestId(id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PredictionResponse>, ApiError> {
    let value = json_body(&headers, body, state.config.max_body_bytes)?;
    let mut prediction = score(&state.artifact, &value).map_err(ApiError::Invalid)?;
    prediction.request_id = Some(id);
    Ok(Json(prediction))
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
    Extension(RequestId(id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    let value = json_body(&headers, body, state.config.max_batch_body_bytes)?;
    let worker = state.clone();
    // Parsing and scoring thousands of rows is CPU work: keep it off the async workers.
    let predictions = tokio::task::spawn_blocking(move || score_batch(&worker, &value))
        .await
        .map_err(|e| ApiError::Internal(format!("batch worker failed: {e}")))??;
    Ok(Json(BatchResponse { predictions, model_version: state.artifact.manifest.version.clone(), request_id: id }))
}

/// Scores many baskets (alias of `/predict/batch`).
#[utoipa::path(post, path = "/batch-predict", tag = "predict",
    request_body(content = BatchRequest, content_type = "application/json"),
    responses((status = 200, body = BatchResponse), (status = 422, body = ErrorBody)))]
pub async fn batch_alias(
    state: State<Arc<AppState>>,
    id: Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    batch(state, id, headers, body).await
}

/// Scores the `records` of a batch body; every invalid field of every record is listed.
pub fn score_batch(state: &AppState, value: &Value) -> Result<Vec<PredictionResponse>, ApiError> {
    let records = match value.get("records") {
        Some(Value::Array(records)) => records,
        Some(other) => {
            return Err(ApiError::Invalid(invalid("records", &format!("must be an array, got {}", kind(other)))));
        }
        None => return Err(ApiError::Invalid(invalid("records", "is required"))),
    };
    let limit = state.config.max_batch_rows;
    if records.is_empty() || records.len() > limit {
        return Err(ApiError::Invalid(invalid(
            "records",
            &format!("must hold 1 to {limit} records, got {}", records.len()),
        )));
    }
    score_records(state, records).map_err(ApiError::Invalid)
}

/// Scores records (each a `/predict` body) together; every invalid field of every record is
/// listed as `records[i].FIELD`. Shared by batch, inference protocol v2 and SageMaker routes.
pub fn score_records(state: &AppState, records: &[Value]) -> Result<Vec<PredictionResponse>, Vec<FieldError>> {
    let pipeline = &state.artifact.pipeline;
    let mut rows = Vec::with_capacity(records.len() * retail_model::features::N_FEATURES);
    let mut unseen = Vec::with_capacity(records.len());
    let mut errors = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let encoded = record_from_json(pipeline, record).and_then(|r| pipeline.encode(&r).map_err(|e| e.errors));
        match encoded {
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
    let engine = &state.artifact.engine;
    let mut probabilities = vec![0.0; records.len() * engine.n_classes()];
    engine.predict_batch(&rows, &mut probabilities);
    Ok(probabilities
        .chunks(engine.n_classes())
        .zip(unseen)
        .map(|(p, unseen)| answer(&state.artifact, p, &unseen))
        .collect())
}

/// Scores one `/predict` body (the flat record or the `basket_items` shape); shared by the API
/// and offline `retail-api predict`.
pub fn score(artifact: &Artifact, value: &Value) -> Result<PredictionResponse, Vec<FieldError>> {
    let record = record_from_json(&artifact.pipeline, value)?;
    let encoded = artifact.pipeline.encode(&record).map_err(|e| e.errors)?;
    let mut p = vec![0.0; artifact.engine.n_classes()];
    artifact.engine.predict_proba(&encoded.features, &mut p);
    Ok(answer(artifact, &p, &encoded.unseen))
}

/// The answer for one basket's probabilities; also counts it in the metrics.
fn answer(artifact: &Artifact, p: &[f64], unseen: &[Unseen]) -> PredictionResponse {
    let m = &artifact.manifest;
    let best = &m.classes[argmax(p)];
    crate::metrics::record_prediction(&best.code, &m.version, unseen.iter().map(|u| u.field));
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

pub fn json_body(headers: &HeaderMap, body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit),
        _ => ApiError::MalformedJson(rejection.body_text()),
    })?;
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
