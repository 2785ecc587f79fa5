//! Wire types of the HTTP API, with OpenAPI schemas and examples taken from the seed payloads.
//! Request bodies are parsed field by field (by [`crate::scoring`]) so that every invalid field
//! can be reported; these types document that shape.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// The seed's flat record: one basket's aggregate values.
#[derive(Debug, ToSchema)]
#[allow(non_snake_case, dead_code)]
#[schema(example = json!({"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}))]
pub struct FlatRecord {
    /// Basket size: S, M or L.
    BASKET_SIZE: String,
    /// Content mix: FRESH, GROCERY, NONFOOD, MIXED (or XX).
    BASKET_TYPE: String,
    /// Store region, e.g. LONDON.
    STORE_REGION: String,
    /// Store format: LS, MS, SS or XLS.
    STORE_FORMAT: String,
    /// Basket total spend in pounds (>= 0).
    SPEND: f64,
    /// Total number of items (>= 1).
    QUANTITY: f64,
    /// Dominant department, e.g. FOOD.
    PROD_CODE_20: String,
    /// Dominant commodity group, e.g. FRESH.
    PROD_CODE_30: String,
}

/// One line of `basket_items`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BasketItemSchema {
    /// Product identifier (informational).
    product_id: Option<String>,
    /// Units bought (>= 1).
    quantity: f64,
    /// Unit price in pounds (>= 0).
    price: f64,
    /// Commodity group or department, e.g. "grocery"; unknown values are scored as unseen.
    category: Option<String>,
}

/// The seed's item-level shape, aggregated by the shared feature pipeline.
#[derive(Debug, ToSchema)]
#[allow(non_snake_case, dead_code)]
#[schema(example = json!({"basket_items": {"P1001": {"product_id": "P1001", "quantity": 2, "price": 10.99, "category": "grocery"}, "P2002": {"product_id": "P2002", "quantity": 1, "price": 25.50, "category": "electronics"}}, "customer_id": "CUST123", "STORE_REGION": "LONDON", "STORE_FORMAT": "LS"}))]
pub struct BasketItemsRequest {
    /// Items keyed by an id (an array of items is accepted too).
    basket_items: BTreeMap<String, BasketItemSchema>,
    /// Customer identifier (informational).
    customer_id: Option<String>,
    /// Store region; scored as unseen when absent.
    STORE_REGION: Option<String>,
    /// Store format; scored as unseen when absent.
    STORE_FORMAT: Option<String>,
}

/// A basket to score: the flat record or `basket_items`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}))]
pub enum PredictRequest {
    /// Flat record.
    Flat(FlatRecord),
    /// Item-level basket.
    Items(BasketItemsRequest),
}

/// Many baskets in one call.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"records": [{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}, {"basket_items": {"P1001": {"quantity": 2, "price": 10.99, "category": "grocery"}}}]}))]
pub struct BatchRequest {
    /// Baskets, each a flat record or a `basket_items` object.
    records: Vec<PredictRequest>,
}

/// A prediction.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"prediction":"MM","label":"Mid Market","probabilities":{"LA":0.12,"MM":0.71,"UM":0.17},"model_version":"5aaf7da9b37f","request_id":"3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8","warnings":[]}))]
pub struct PredictionResponse {
    /// Most probable class: LA, MM or UM.
    pub prediction: String,
    /// Its label: Less Affluent, Mid Market or Up Market.
    pub label: String,
    /// Probability of every class (they sum to 1).
    pub probabilities: BTreeMap<String, f64>,
    /// Version of the model that answered.
    pub model_version: String,
    /// Request id (also in the `x-request-id` header); absent inside batch answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Category values scored as unseen, e.g. `STORE_REGION: unknown value "MARS"; scored as unseen`.
    pub warnings: Vec<String>,
}

/// Predictions of a batch, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One prediction per record.
    pub predictions: Vec<PredictionResponse>,
    /// Version of the model that answered.
    pub model_version: String,
    /// Request id.
    pub request_id: String,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct FieldErrorSchema {
    /// Field path, e.g. `SPEND`, `basket_items.P1001.price`, `records[3].QUANTITY`.
    field: String,
    /// What is wrong, e.g. `must be >= 0, got -3`.
    reason: String,
}

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"error":"request has invalid fields","code":"invalid_input","details":[{"field":"SPEND","reason":"must be >= 0, got -3"}],"request_id":"3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8"}))]
pub struct ErrorBody {
    /// Human-readable message.
    error: String,
    /// Stable snake_case code: malformed_json, invalid_input, payload_too_large, unsupported_media_type, not_found, method_not_allowed, body_timeout, body_read, overloaded, timeout, not_ready, internal.
    code: String,
    /// Invalid fields (422 only): the first 100.
    details: Option<Vec<FieldErrorSchema>>,
    /// How many fields were invalid in all (422 only).
    total_errors: Option<u64>,
    /// Request id.
    request_id: String,
}

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// Always `healthy`.
    pub status: &'static str,
    /// RFC 3339 time of the answer.
    pub timestamp: String,
    /// Version of the served model; null while none is loaded.
    pub model_version: Option<String>,
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyResponse {
    /// `ready`.
    pub status: &'static str,
    /// Version of the served model.
    pub model_version: String,
}

/// Build information of the running binary.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionResponse {
    /// Package name.
    pub name: &'static str,
    /// Package version.
    pub version: &'static str,
    /// Git commit the binary was built from (`GIT_COMMIT` at build time).
    pub git_commit: &'static str,
    /// Git branch (`GIT_BRANCH` at build time).
    pub git_branch: &'static str,
    /// Build date (`BUILD_DATE` at build time).
    pub build_date: &'static str,
    /// Compiler.
    pub rustc: &'static str,
}
