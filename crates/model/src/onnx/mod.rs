//! "Bring your own model": imports a tree ensemble exported to ONNX (skl2onnx, onnxmltools;
//! `ai.onnx.ml` `TreeEnsembleClassifier` / `TreeEnsembleRegressor`) into the native engine's
//! [`EnsembleSpec`]. No ONNX runtime is involved. Two ways in:
//!
//! - [`import`]: a classifier over the basket pipeline's own feature row, so it is served by the
//!   same pipeline and engine as a trained one. The [`InputMapping`] says what each column of the
//!   ONNX input is: a numeric pipeline feature, the one-hot indicator of a category, or an
//!   ordinal code. A threshold split on a one-hot or ordinal column becomes a category-set split
//!   on the pipeline's categorical feature (unseen code 0 sets every indicator to 0, like
//!   `OneHotEncoder(handle_unknown="ignore")`).
//! - [`import_raw`]: a classifier or regressor over a raw numeric vector (a generic table):
//!   input column `i` is engine feature `i`, NaN is a missing value.
//!
//! ONNX compares in the input's precision (`float32` for skl2onnx), so a numeric threshold `t`
//! becomes the largest `f64` bound `b` with `x <= b` exactly when `(x as f32) <= t`. A missing
//! value (NaN) goes where onnxruntime sends it: to a node's true branch when it tracks missing
//! values to true (`nodes_missing_value_tracks_true`, XGBoost and LightGBM exports), else to
//! where the comparison sends NaN (false, but for `BRANCH_NEQ`); every imported node states it
//! in [`NodeSpec::missing_left`](crate::engine::NodeSpec::missing_left).
//!
//! Graphs with other compute (linear models, neural networks, in-graph preprocessing) and
//! ZipMap outputs are refused with a message naming the operator. What decoding a file costs
//! is bounded from its wire format before it is decoded ([`MAX_DECODED_BYTES`]).

mod basket;
mod bound;
mod ensemble;
mod graph;
mod mapping;
mod proto;
mod raw;
mod translate;

pub use basket::import;
pub use bound::MAX_DECODED_BYTES;
pub use mapping::{InputColumn, InputMapping, input_schema};
pub use raw::{RawImport, RawTask, import_raw};

use std::collections::BTreeMap;

use prost::Message;
use serde::{Deserialize, Serialize};

use crate::engine::EnsembleSpec;
use ensemble::Ensemble;
use graph::GraphShape;
use proto::ModelProto;

#[cfg(test)]
use {crate::engine::Output, translate::f32_leq_bound};

/// Domain of the ONNX-ML operators.
const ML_DOMAIN: &str = "ai.onnx.ml";

/// Why an ONNX model or its input mapping cannot be imported.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnnxError {
    /// The bytes are not an ONNX model.
    #[error("not a valid ONNX model: {0}")]
    Decode(String),
    /// The graph computes something other than a tree ensemble.
    #[error("unsupported ONNX graph: {0}")]
    Graph(String),
    /// The tree ensemble is malformed or uses a feature the importer does not support.
    #[error("tree ensemble: {0}")]
    Trees(String),
    /// The model's class labels are not the API's.
    #[error(
        "the model's class labels {found:?} are not this API's classes {expected:?} (train on the labels LA/MM/UM)"
    )]
    Classes {
        /// Labels in the ONNX model.
        found: Vec<String>,
        /// Classes the API serves.
        expected: Vec<String>,
    },
    /// The input mapping is invalid or does not fit the graph.
    #[error("input mapping: {0}")]
    Mapping(String),
    /// Decoding the file would take more memory than allowed (found before decoding it).
    #[error("decoding it could take {bytes} bytes, more than the {MAX_DECODED_BYTES} allowed (MAX_DECODED_BYTES)")]
    TooLarge {
        /// The upper bound computed from the file.
        bytes: u64,
    },
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The ensemble over the pipeline's feature row.
    pub spec: EnsembleSpec,
    /// Facts about the ONNX file, for the manifest and `/model/info`.
    pub summary: OnnxSummary,
}

/// Facts about an imported ONNX file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnnxSummary {
    /// Producer and version recorded in the file, e.g. `skl2onnx 1.20.0`.
    pub producer: String,
    /// ONNX IR version.
    pub ir_version: i64,
    /// Operator sets imported (`""` is the default domain).
    pub opsets: BTreeMap<String, i64>,
    /// Name of the graph input.
    pub input: String,
    /// Columns of the input tensor.
    pub columns: usize,
    /// Precision ONNX compares in (`float` or `double`).
    pub precision: String,
    /// Trees in the ONNX ensemble.
    pub trees: usize,
    /// Nodes (splits and leaves) in the ONNX ensemble.
    pub nodes: usize,
    /// `post_transform` of the ensemble (`SOFTMAX`, `NONE`, or for a binary classifier `LOGISTIC`).
    pub post_transform: String,
}

/// Decodes an ONNX file, after bounding what decoding it takes ([`MAX_DECODED_BYTES`]).
fn decode(bytes: &[u8]) -> Result<ModelProto, OnnxError> {
    let decoded = bound::decoded_bytes(bytes)?;
    if decoded > MAX_DECODED_BYTES {
        return Err(OnnxError::TooLarge { bytes: decoded });
    }
    let model = ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))?;
    if model.graph.is_none() {
        return Err(OnnxError::Decode("the model has no graph".to_owned()));
    }
    Ok(model)
}

/// Facts about an imported file: its model, the graph shape found and the ensemble read.
fn summary(model: &ModelProto, shape: &GraphShape<'_>, ensemble: &Ensemble, columns: usize) -> OnnxSummary {
    OnnxSummary {
        producer: format!("{} {}", model.producer_name, model.producer_version).trim().to_owned(),
        ir_version: model.ir_version,
        opsets: model.opset_import.iter().map(|o| (o.domain.clone(), o.version)).collect(),
        input: shape.input.clone(),
        columns,
        precision: if shape.f32 { "float" } else { "double" }.to_owned(),
        trees: ensemble.trees.len(),
        nodes: ensemble.nodes,
        post_transform: ensemble.post_transform.clone(),
    }
}

#[cfg(test)]
mod tests;
