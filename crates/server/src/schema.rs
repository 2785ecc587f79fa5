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
    /// Basket size: S, M or L. Category fields take any string: a value the model did not see
    /// in training is scored as unseen and named in `warnings` (the served model's vocabulary of
    /// each field is in `/model/info`, `input_schema`).
    #[schema(examples("S", "M", "L"))]
    BASKET_SIZE: String,
    /// Content mix: FRESH, GROCERY, NONFOOD, MIXED (or XX); other values are scored as unseen.
    #[schema(examples("FRESH", "GROCERY", "NONFOOD", "MIXED", "XX"))]
    BASKET_TYPE: String,
    /// Store region, e.g. LONDON; other values are scored as unseen.
    #[schema(examples("LONDON", "NORTH_WEST", "SOUTH_EAST", "MIDLANDS", "SCOTLAND"))]
    STORE_REGION: String,
    /// Store format: LS, MS, SS or XLS; other values are scored as unseen.
    #[schema(examples("LS", "MS", "SS", "XLS"))]
    STORE_FORMAT: String,
    /// Basket total spend in pounds (>= 0). A numeric string (`"125.50"`) is accepted as
    /// pydantic's lax mode does.
    #[schema(value_type = NumberOrString)]
    SPEND: f64,
    /// Total number of items (>= 1). A numeric string (`"3"`) is accepted.
    #[schema(value_type = NumberOrString)]
    QUANTITY: f64,
    /// Dominant department, e.g. FOOD; other values are scored as unseen.
    #[schema(examples("FOOD", "DRINKS", "HOUSEHOLD"))]
    PROD_CODE_20: String,
    /// Dominant commodity group, e.g. FRESH; other values are scored as unseen.
    #[schema(examples("FRESH", "GROCERY", "DAIRY"))]
    PROD_CODE_30: String,
}

/// A number, or a string holding a finite decimal number (pydantic's lax mode: `"125.50"`, not
/// `"NaN"` or `""`).
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum NumberOrString {
    /// A JSON number.
    Number(f64),
    /// A decimal number as a string.
    String(String),
}

/// One line of `basket_items`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BasketItemSchema {
    /// Product identifier (informational).
    product_id: Option<String>,
    /// Units bought (>= 1); a numeric string is accepted.
    #[schema(value_type = NumberOrString)]
    quantity: f64,
    /// Unit price in pounds (>= 0); a numeric string is accepted.
    #[schema(value_type = NumberOrString)]
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

/// One store, product and day to forecast (the seed's Retail Forecast API).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}))]
pub struct SalesFeatures {
    /// Store id (a whole number >= 0). A store without training history is scored with the
    /// defaults for an unseen store and named in `warnings`.
    store_id: i64,
    /// Product id (a whole number >= 0); an unseen product is scored likewise.
    product_id: i64,
    /// The day, `YYYY-MM-DD` (a real calendar date).
    #[schema(format = Date)]
    date: String,
    /// Shelf price that day, in pounds (> 0).
    price: f64,
    /// 1 when the product is on promotion that day, else 0.
    #[schema(minimum = 0, maximum = 1)]
    promotion: i64,
}

/// A day of sales to forecast: the seed's `{"features": {...}}` (the fields may also be sent
/// without the wrapper).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"features": {"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99, "promotion": 0}}))]
pub struct ForecastRequest {
    /// The store, product, day, price and promotion.
    features: SalesFeatures,
}

/// One value of a tabular row: a number, text (a numeric column parses it), or `null` (missing).
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TabularValue {
    /// A number.
    Number(f64),
    /// Text: a category, or a number as text.
    Text(String),
    /// `null`: a missing value.
    Missing,
}

/// A tabular row's values: by column name (absent columns are missing; unknown names are
/// refused) or one per column in the model's column order (`/models/{name}/info`).
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum TabularFeatures {
    /// By column name.
    ByName(BTreeMap<String, TabularValue>),
    /// In column order, exactly one value per column.
    InOrder(Vec<TabularValue>),
}

/// A row for a tabular model (seed 001).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"features": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]}))]
pub struct TabularRequest {
    /// The row's values.
    features: TabularFeatures,
}

/// A record to score, as the served model's kind reads it: a basket (the flat record or
/// `basket_items`, as it is, no wrapper) for a basket classifier, a day of sales for a sales
/// forecast, or a row of a tabular model. On the unqualified routes a body for another kind than
/// the default model's goes to the one loaded model of that kind.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
#[schema(example = json!({"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}))]
pub enum PredictRequest {
    /// Flat record.
    Flat(FlatRecord),
    /// Item-level basket.
    Items(BasketItemsRequest),
    /// A day of sales.
    Forecast(ForecastRequest),
    /// A tabular row.
    Tabular(TabularRequest),
}

/// A prediction: a class and its probabilities (basket or tabular classifier), or a number (a
/// forecast of units, a tabular regressor's value).
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PredictAnswer {
    /// A basket classifier's.
    Basket(PredictionResponse),
    /// A sales forecast's.
    Forecast(ForecastResponse),
}

/// Many records in one call.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"records": [{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}, {"basket_items": {"P1001": {"quantity": 2, "price": 10.99, "category": "grocery"}}}]}))]
pub struct BatchRequest {
    /// Records of the model's kind: baskets (flat or `basket_items`), or days of sales.
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
    /// With `?explain=true` only: the class scores explained per input field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::scoring::ExplanationSchema>)]
    pub explanation: Option<crate::scoring::Explanation>,
    /// For a `basket_items` body only (`/predict`, `/models/{name}/predict`; not in batch
    /// answers): the flat record the service derived from the items and scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basket_summary: Option<Box<BasketSummary>>,
}

/// The flat record the service derived from `basket_items` and scored: totals, dominant
/// department and commodity group by spend, size and content mix; sent back as a flat record
/// it gets the same answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[allow(non_snake_case)]
#[schema(example = json!({"SPEND": 47.48, "QUANTITY": 3, "PROD_CODE_20": "GENERAL", "PROD_CODE_30": "ELECTRONICS", "BASKET_SIZE": "M", "BASKET_TYPE": "MIXED", "STORE_REGION": "LONDON", "STORE_FORMAT": "LS"}))]
pub struct BasketSummary {
    /// Total spend in pounds: the sum of quantity × price over the items.
    pub SPEND: f64,
    /// Total number of units: the sum of the items' quantities.
    pub QUANTITY: f64,
    /// Dominant department by spend (an item's category names its commodity group or its
    /// department). When no item's category is known: the dominant unknown category (scored as
    /// unseen), or an empty string when no item has one.
    pub PROD_CODE_20: String,
    /// Dominant commodity group by spend (the same fallback as `PROD_CODE_20`).
    pub PROD_CODE_30: String,
    /// Basket size derived from SPEND: S, M or L.
    pub BASKET_SIZE: String,
    /// Content mix derived from the items' spend per commodity class.
    pub BASKET_TYPE: String,
    /// The request's store region; an empty string when not given (scored as unseen).
    pub STORE_REGION: String,
    /// The request's store format; an empty string when not given (scored as unseen).
    pub STORE_FORMAT: String,
}

impl From<&retail_model::features::BasketRecord> for BasketSummary {
    fn from(r: &retail_model::features::BasketRecord) -> Self {
        Self {
            SPEND: r.spend,
            QUANTITY: r.quantity,
            PROD_CODE_20: r.prod_code_20.clone(),
            PROD_CODE_30: r.prod_code_30.clone(),
            BASKET_SIZE: r.basket_size.clone(),
            BASKET_TYPE: r.basket_type.clone(),
            STORE_REGION: r.store_region.clone(),
            STORE_FORMAT: r.store_format.clone(),
        }
    }
}

/// A sales forecast: units expected to sell at that store, of that product, that day.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"prediction": 1.84, "model_version": "3c1f0e9a7b2d", "request_id": "3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8", "warnings": []}))]
pub struct ForecastResponse {
    /// Expected units sold (the mean of the forecast distribution).
    pub prediction: f64,
    /// Version of the model that answered.
    pub model_version: String,
    /// Request id (also in the `x-request-id` header); absent inside batch answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Ids without training history, scored with the defaults for an unseen store or product,
    /// e.g. `product_id: unknown value "4242"; scored as unseen`.
    pub warnings: Vec<String>,
    /// With `?explain=true` only: the prediction explained per input field (in its link space).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::scoring::ExplanationSchema>)]
    pub explanation: Option<crate::scoring::Explanation>,
}

/// Predictions of a batch, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One answer per record: its prediction, or (with `errors=inline`) its errors.
    #[schema(value_type = Vec<BatchItemSchema>)]
    pub predictions: Vec<crate::scoring::BatchItem>,
    /// Records answered with their errors instead of a prediction (only with `errors=inline`).
    pub failed: usize,
    /// Version of the model that answered.
    pub model_version: String,
    /// Request id.
    pub request_id: String,
}

/// A record's answer in a batch.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum BatchItemSchema {
    /// A basket, scored.
    Scored(PredictionResponse),
    /// A day of sales, forecast.
    Forecast(ForecastResponse),
    /// Not scored (`errors=inline` only).
    Failed(RecordErrorSchema),
}

/// An invalid record of a batch with `errors=inline`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
#[schema(example = json!({"index": 1, "error": "record has invalid fields", "details": [{"field": "SPEND", "reason": "must be >= 0, got -3"}], "total_errors": 1}))]
pub struct RecordErrorSchema {
    /// Position of the record in the batch (0-based).
    index: u64,
    /// `record has invalid fields`.
    error: String,
    /// Its invalid fields (at most 100 per record and 1,000 per batch are listed).
    details: Vec<FieldErrorSchema>,
    /// How many of its fields were invalid.
    total_errors: u64,
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
    /// Stable snake_case code: malformed_json, invalid_input, payload_too_large, unsupported_media_type, not_found, method_not_allowed, body_timeout, body_read, overloaded, timeout, not_ready, internal. Absent in the errors of inference protocol v2, which has its own shape (`error` only).
    code: Option<String>,
    /// Invalid fields (422 only): the first 100.
    details: Option<Vec<FieldErrorSchema>>,
    /// How many fields were invalid in all (422 only).
    total_errors: Option<u64>,
    /// The listed fields again in FastAPI's shape (422 only), so handlers written for FastAPI keep working.
    detail: Option<Vec<FastApiDetail>>,
    /// Request id.
    request_id: String,
}

/// One invalid field as FastAPI reports it.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct FastApiDetail {
    /// Where: `["body", "SPEND"]`, `["body", "records", 3, "QUANTITY"]`.
    loc: Vec<LocItem>,
    /// What is wrong.
    msg: String,
    /// `missing` for an absent field, else `value_error`.
    #[serde(rename = "type")]
    kind: String,
}

/// A key or an array index of a FastAPI `loc`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum LocItem {
    /// A field name.
    Key(String),
    /// An array index.
    Index(u64),
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

/// One input tensor of inference protocol v2: a flat-record field, one value per row.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2Tensor {
    /// Field name, e.g. `SPEND`.
    name: String,
    /// `[N]` (or `[N, 1]`): N rows.
    shape: Vec<u64>,
    /// `BYTES` for category fields, `FP64`/`FP32`/`INT64`/`INT32` for numbers.
    datatype: String,
    /// N values, row-major.
    data: Vec<V2Value>,
}

/// A tensor value: a string (`BYTES`) or a number.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum V2Value {
    /// A number.
    Number(f64),
    /// A string.
    String(String),
}

/// A requested output.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2RequestedOutput {
    /// `label` or `probabilities`.
    name: String,
}

/// An inference request of protocol v2.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2InferRequest {
    /// Echoed in the answer.
    id: Option<String>,
    /// One tensor per flat-record field.
    inputs: Vec<V2Tensor>,
    /// The outputs wanted (default: both).
    outputs: Option<Vec<V2RequestedOutput>>,
}

/// An output tensor: `label` (`BYTES`, `[N]`) or `probabilities` (`FP64`, `[N, classes]`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2Output {
    /// `label` or `probabilities`.
    name: String,
    /// `[N]` or `[N, classes]`.
    shape: Vec<u64>,
    /// `BYTES` or `FP64`.
    datatype: String,
    /// Row-major values.
    data: Vec<V2Value>,
}

/// An inference answer of protocol v2.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2InferResponse {
    /// Model name.
    model_name: String,
    /// Model version.
    model_version: String,
    /// The request's `id`, else the request id.
    id: String,
    /// The requested outputs.
    outputs: Vec<V2Output>,
}

/// A tensor's description in model metadata.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2TensorMetadata {
    /// Name.
    name: String,
    /// Datatype.
    datatype: String,
    /// Shape, -1 for any number of rows.
    shape: Vec<i64>,
}

/// Model metadata of protocol v2.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2ModelMetadata {
    /// Model name.
    name: String,
    /// The version served.
    versions: Vec<String>,
    /// `retail-gbdt`.
    platform: String,
    /// Inputs.
    inputs: Vec<V2TensorMetadata>,
    /// Outputs.
    outputs: Vec<V2TensorMetadata>,
    /// `classes`: class codes in the order of `probabilities`.
    parameters: Object,
}

/// Server metadata of protocol v2.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2ServerMetadata {
    /// `retail-api`.
    name: String,
    /// Package version.
    version: String,
    /// None.
    extensions: Vec<String>,
}

/// Liveness of protocol v2.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2Live {
    /// Always true.
    live: bool,
}

/// Readiness of protocol v2 (server).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2Ready {
    /// Whether a model is loaded and the server is not draining.
    ready: bool,
}

/// Readiness of protocol v2 (model).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct V2ModelReady {
    /// Model name.
    name: String,
    /// Whether it is served and the server is not draining.
    ready: bool,
}

/// A model readiness answer, or the protocol's error while no model is loaded.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum V2ModelReadyOrError {
    /// `{"name", "ready": false}` while shutting down.
    Ready(V2ModelReady),
    /// `{"error", "request_id"}` while no model is loaded.
    Error(ErrorBody),
}

/// A JSON object (free-form).
pub type Object = serde_json::Map<String, serde_json::Value>;
