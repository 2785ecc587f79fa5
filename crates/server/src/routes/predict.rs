//! `POST /predict`: one basket, either the seed's flat record or `{"basket_items": {...}}`.
//! Both go through the shared feature pipeline; unknown categories are scored as unseen and
//! reported in `warnings`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use retail_model::artifact::Artifact;
use retail_model::features::FeaturePipeline;
use retail_model::features::{
    BasketItem, BasketRecord, FEATURE_NAMES, FIRST_CATEGORICAL, FieldError, N_CATEGORICAL,
    StoreContext,
};
use retail_model::metrics::argmax;
use serde::Serialize;
use serde_json::{Map, Value};

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

/// A prediction.
#[derive(Debug, Serialize)]
pub struct PredictionResponse {
    /// Most probable class code.
    pub prediction: String,
    /// Its human label.
    pub label: String,
    /// Probability of every class.
    pub probabilities: serde_json::Map<String, Value>,
    /// Version of the model that answered.
    pub model_version: String,
    /// Category values scored as unseen, and similar notes.
    pub warnings: Vec<String>,
}

/// Scores one basket.
pub async fn predict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PredictionResponse>, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(crate::MAX_BODY_BYTES),
        _ => ApiError::MalformedJson(rejection.body_text()),
    })?;
    let value = json_body(&headers, &body)?;
    score(&state.artifact, &value)
        .map(Json)
        .map_err(ApiError::Invalid)
}

/// Scores one `/predict` body (the flat record or the `basket_items` shape); shared by the API
/// and offline `retail-api predict`.
pub fn score(artifact: &Artifact, value: &Value) -> Result<PredictionResponse, Vec<FieldError>> {
    let record = record_from_json(&artifact.pipeline, value)?;
    let encoded = artifact.pipeline.encode(&record).map_err(|e| e.errors)?;
    let mut p = vec![0.0; artifact.engine.n_classes()];
    artifact.engine.predict_proba(&encoded.features, &mut p);
    let best = &artifact.manifest.classes[argmax(&p)];
    Ok(PredictionResponse {
        prediction: best.code.clone(),
        label: best.label.clone(),
        probabilities: artifact
            .manifest
            .classes
            .iter()
            .zip(&p)
            .map(|(c, &p)| (c.code.clone(), Value::from(p)))
            .collect(),
        model_version: artifact.manifest.version.clone(),
        warnings: encoded
            .unseen
            .iter()
            .map(|u| {
                if u.value.is_empty() {
                    format!("{}: not provided; scored as unseen", u.field)
                } else {
                    format!("{}: unknown value {:?}; scored as unseen", u.field, u.value)
                }
            })
            .collect(),
    })
}

/// Reads a `/predict` body into a record, listing every missing, mistyped or out-of-range field.
pub fn record_from_json(
    pipeline: &FeaturePipeline,
    value: &Value,
) -> Result<BasketRecord, Vec<FieldError>> {
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
    vec![FieldError {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }]
}

fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))
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
    errors.push(FieldError {
        field: path.to_owned(),
        reason,
    });
    None
}

const NUMBER: (&str, fn(&Value) -> Option<f64>) = ("a number", Value::as_f64);
const STRING: (&str, fn(&Value) -> Option<String>) =
    ("a string", |v| v.as_str().map(str::to_owned));

fn parse_flat(object: &Map<String, Value>) -> Result<BasketRecord, Vec<FieldError>> {
    let mut errors = Vec::new();
    let spend = field(object, ("SPEND", "SPEND"), true, NUMBER, &mut errors);
    let quantity = field(object, ("QUANTITY", "QUANTITY"), true, NUMBER, &mut errors);
    let categories = CATEGORY_FIELDS
        .map(|f| field(object, (f, f), true, STRING, &mut errors).unwrap_or_default());
    let [
        prod_code_20,
        prod_code_30,
        basket_size,
        basket_type,
        store_region,
        store_format,
    ] = categories;
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
    if errors.is_empty() {
        Ok(record)
    } else {
        Err(errors)
    }
}

/// Items (keyed by their id), the store fields, and the type errors found while reading them.
type ParsedItems = (Vec<(String, BasketItem)>, StoreContext, Vec<FieldError>);

/// `basket_items` as an object keyed by item id (the seed's shape) or as an array.
fn parse_items(items: &Value, object: &Map<String, Value>) -> Result<ParsedItems, Vec<FieldError>> {
    let entries: Vec<(String, &Value)> = match items {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(list) => list
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        other => {
            return Err(invalid(
                "basket_items",
                &format!("must be an object of items, got {}", kind(other)),
            ));
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
        let quantity = field(
            item,
            ("quantity", &path("quantity")),
            true,
            NUMBER,
            &mut errors,
        );
        let price = field(item, ("price", &path("price")), true, NUMBER, &mut errors);
        let category = field(
            item,
            ("category", &path("category")),
            false,
            STRING,
            &mut errors,
        );
        let product_id = field(
            item,
            ("product_id", &path("product_id")),
            false,
            STRING,
            &mut errors,
        );
        // A mistyped number is already reported; a neutral stand-in lets the other fields be checked.
        parsed.push((
            key,
            BasketItem {
                product_id,
                quantity: quantity.unwrap_or(1.0),
                price: price.unwrap_or(0.0),
                category,
            },
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
    if let Some(customer) = object
        .get("customer_id")
        .filter(|c| !matches!(c, Value::String(_) | Value::Null))
    {
        errors.push(FieldError {
            field: "customer_id".to_owned(),
            reason: format!("must be a string, got {}", kind(customer)),
        });
    }
    Ok((parsed, store, errors))
}
