//! The input mapping of a basket-pipeline import: what each ONNX column is (a numeric pipeline
//! feature, a one-hot indicator, an ordinal code), checked against the pipeline's features, and
//! the input schema it implies.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::OnnxError;
use crate::catalogue;
use crate::features::{
    FEATURE_NAMES, FIRST_CATEGORICAL, FeatureSpec, InputSchema, MAX_QUANTITY, MAX_SPEND, N_FEATURES,
};

/// What the columns of the ONNX model's input tensor are, in column order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMapping {
    /// Name of the graph input (optional when the graph has one input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// One entry per column of the input tensor.
    pub columns: Vec<InputColumn>,
    /// Names of integer class labels (`classlabels_int64s`, as XGBoost and LightGBM exports
    /// carry): label `i` is the API class `classes[i]`. Only for models with integer labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

/// One column of the ONNX input: `{"feature":"SPEND"}`,
/// `{"feature":"STORE_REGION","one_hot":"LONDON"}` or
/// `{"feature":"BASKET_SIZE","ordinal":["S","M","L"],"unseen":-1}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputColumn {
    /// Pipeline feature the column is computed from (one of [`FEATURE_NAMES`]).
    pub feature: String,
    /// The column is 1 when the categorical feature has this value, else 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_hot: Option<String>,
    /// The column is the position of the categorical feature's value in this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<Vec<String>>,
    /// Column value of a category missing from `ordinal` (e.g. -1, as sklearn's
    /// `OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unseen: Option<f64>,
}

/// What an ONNX column is, resolved against the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Column {
    /// The value of numeric feature `feature`.
    Numeric { feature: usize },
    /// 1 when categorical feature `feature` has value `value`.
    OneHot { feature: usize, value: String },
    /// Position of the value in `order`, else `unseen`.
    Ordinal { feature: usize, order: Vec<String>, unseen: f64 },
}

impl Column {
    pub(super) fn feature(&self) -> usize {
        match self {
            Self::Numeric { feature } | Self::OneHot { feature, .. } | Self::Ordinal { feature, .. } => *feature,
        }
    }

    /// The column's value for a row whose categorical feature is `value` (`None`: unseen).
    pub(super) fn categorical_value(&self, value: Option<&str>) -> f64 {
        match self {
            Self::Numeric { .. } => unreachable!("numeric columns have no category"),
            Self::OneHot { value: hot, .. } => f64::from(u8::from(value == Some(hot.as_str()))),
            Self::Ordinal { order, unseen, .. } => {
                value.and_then(|v| order.iter().position(|o| o == v)).map_or(*unseen, |i| i as f64)
            }
        }
    }
}

/// The input schema an imported model is served with: the numeric features with their accepted
/// ranges, and each categorical feature's vocabulary as the categories the mapping names (sorted,
/// canonical spelling). A categorical feature the mapping does not use has an empty vocabulary,
/// so its values are reported as unseen: the model never looks at them.
pub fn input_schema(mapping: &InputMapping) -> Result<InputSchema, OnnxError> {
    let columns = resolve_columns(mapping)?;
    let mut vocabularies: Vec<BTreeSet<String>> = vec![BTreeSet::new(); N_FEATURES];
    for column in &columns {
        match column {
            Column::Numeric { .. } => {}
            Column::OneHot { feature, value } => {
                vocabularies[*feature].insert(value.clone());
            }
            Column::Ordinal { feature, order, .. } => vocabularies[*feature].extend(order.iter().cloned()),
        }
    }
    let features = FEATURE_NAMES
        .iter()
        .zip(vocabularies)
        .enumerate()
        .map(|(i, (name, vocabulary))| {
            let name = (*name).to_owned();
            if i >= FIRST_CATEGORICAL {
                return FeatureSpec::Categorical { name, vocabulary: vocabulary.into_iter().collect() };
            }
            let (valid_min, valid_max) = if name == "QUANTITY" { (1.0, MAX_QUANTITY) } else { (0.0, MAX_SPEND) };
            // The ONNX file does not record the training range; the accepted range stands in.
            FeatureSpec::Numeric { name, min: valid_min, max: valid_max, valid_min, valid_max }
        })
        .collect();
    Ok(InputSchema { features, hierarchy: catalogue::builtin_hierarchy() })
}

/// Checks the mapping's columns against the pipeline's features; category values are
/// canonicalised as requests are.
pub(super) fn resolve_columns(mapping: &InputMapping) -> Result<Vec<Column>, OnnxError> {
    if mapping.columns.is_empty() {
        return Err(OnnxError::Mapping("lists no columns".to_owned()));
    }
    mapping
        .columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let fail = |reason: String| OnnxError::Mapping(format!("column {j} ({}): {reason}", c.feature));
            let feature = FEATURE_NAMES
                .iter()
                .position(|n| *n == c.feature)
                .ok_or_else(|| fail(format!("unknown feature; the features are {}", FEATURE_NAMES.join(", "))))?;
            let categorical = feature >= FIRST_CATEGORICAL;
            if c.unseen.is_some() && c.ordinal.is_none() {
                return Err(fail("`unseen` belongs to an `ordinal` column".to_owned()));
            }
            match (&c.one_hot, &c.ordinal) {
                (None, None) if !categorical => Ok(Column::Numeric { feature }),
                (None, None) => Err(fail("a categorical feature needs `one_hot` or `ordinal`".to_owned())),
                (Some(_), _) | (_, Some(_)) if !categorical => {
                    Err(fail("a numeric feature takes no `one_hot` or `ordinal`".to_owned()))
                }
                (Some(_), Some(_)) => Err(fail("give either `one_hot` or `ordinal`, not both".to_owned())),
                (Some(value), None) => {
                    let value = catalogue::canonical(value);
                    if value.is_empty() {
                        return Err(fail("`one_hot` value is empty".to_owned()));
                    }
                    Ok(Column::OneHot { feature, value })
                }
                (None, Some(order)) => {
                    let order: Vec<String> = order.iter().map(|v| catalogue::canonical(v)).collect();
                    let distinct: BTreeSet<&String> = order.iter().collect();
                    if order.is_empty() || distinct.len() != order.len() || order.iter().any(String::is_empty) {
                        return Err(fail("`ordinal` must list distinct, non-empty values".to_owned()));
                    }
                    let unseen = c.unseen.ok_or_else(|| {
                        fail(
                            "an `ordinal` column needs `unseen`: the value of categories not listed (e.g. -1)"
                                .to_owned(),
                        )
                    })?;
                    if !unseen.is_finite() {
                        return Err(fail("`unseen` must be a finite number".to_owned()));
                    }
                    Ok(Column::Ordinal { feature, order, unseen })
                }
            }
        })
        .collect()
}
