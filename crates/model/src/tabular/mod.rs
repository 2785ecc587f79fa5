//! Generic tabular models (seed 001's ML inference service): a classifier or regression over the
//! columns of any CSV. The half shared by training and serving is here: the column schema the
//! artifact records ([`TABULAR_FILE`]) and [`TabularSchema::encode`], the one function that
//! turns a row of values into the engine's feature row, for training rows and requests alike.
//!
//! # Encoding
//! - A numeric column takes a number, or text that parses as one; a missing value is NaN, which
//!   every split routes the way training learned (missing values go left or right per node).
//! - A categorical column takes text (a number is formatted as text: `3`, `2.5`); its codes are
//!   the positions in its vocabulary (most frequent training value first), and one more code,
//!   the vocabulary's length, stands for a missing, unseen or rare value.
//! - Missing: JSON `null`, or text that is empty or one of [`MISSING_TOKENS`].
//! - Warnings (the row is still scored): a categorical value not in the vocabulary, a number
//!   outside the training range of its column.
//!
//! Reading CSVs, inferring column types, splitting and training need the `train` feature.

use serde::{Deserialize, Serialize};

use crate::engine::MAX_FEATURES;
use crate::features::{FieldError, InvalidInput};

#[cfg(feature = "train")]
pub mod data;
#[cfg(feature = "train")]
pub mod evaluation;
#[cfg(feature = "train")]
pub mod import;
#[cfg(feature = "train")]
pub mod split;
#[cfg(feature = "train")]
pub mod training;

/// Name of a tabular model's column schema in its artifact.
pub const TABULAR_FILE: &str = "tabular.json";
/// Text read as a missing value (besides the empty string), as pandas reads them by default.
pub const MISSING_TOKENS: [&str; 7] = ["NA", "N/A", "NaN", "nan", "null", "NULL", "None"];
/// Most values of a categorical column's vocabulary; the rest share the missing code (the
/// trainer's categorical splits hold 256 codes).
pub const MAX_VOCABULARY: usize = 254;
/// Longest category value kept in a vocabulary, in bytes.
pub const MAX_CATEGORY_BYTES: usize = 256;
/// Longest column name, in bytes.
pub const MAX_COLUMN_NAME_BYTES: usize = 256;
/// Most feature columns: the engine's limit.
pub const MAX_COLUMNS: usize = MAX_FEATURES;

/// The columns a tabular model reads, in feature order (the order of a `features` array).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabularSchema {
    /// The feature columns.
    pub columns: Vec<Column>,
}

/// One feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Column {
    /// Column name, as in the CSV header.
    pub name: String,
    /// Its type and what training saw of it.
    #[serde(flatten)]
    pub kind: ColumnKind,
    /// Share of training rows where it was missing.
    #[serde(default)]
    pub missing_share: f64,
}

/// A column's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ColumnKind {
    /// Numbers; the range is the training data's (values outside it are scored with a warning).
    Numeric {
        /// Smallest training value.
        min: f64,
        /// Largest training value.
        max: f64,
    },
    /// Text values; code `i` is `vocabulary[i]`, code `vocabulary.len()` a missing, unseen or
    /// rare value.
    Categorical {
        /// Values in code order (most frequent first).
        vocabulary: Vec<String>,
    },
}

/// One value of a row, before encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// JSON `null` or an absent field.
    Missing,
    /// A JSON number.
    Number(f64),
    /// A JSON string or a CSV cell.
    Text(&'a str),
}

/// Something worth telling the caller about a value that was still scored.
#[derive(Debug, Clone, PartialEq)]
pub enum TabularWarning {
    /// A categorical value not in the vocabulary, scored as missing.
    Unseen {
        /// Column name.
        column: String,
        /// The value (at most [`MAX_CATEGORY_BYTES`] of it).
        value: String,
    },
    /// A number outside the column's training range.
    OutOfRange {
        /// Column name.
        column: String,
        /// The value.
        value: f64,
        /// Training minimum.
        min: f64,
        /// Training maximum.
        max: f64,
    },
}

impl std::fmt::Display for TabularWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unseen { column, value } => {
                let shown: String = value.chars().take(32).collect();
                let more = if shown.len() < value.len() { "…" } else { "" };
                write!(f, "{column}: unknown value {shown:?}{more}; scored as missing")
            }
            Self::OutOfRange { column, value, min, max } => {
                write!(f, "{column}: {value} is outside the training range [{min}, {max}]")
            }
        }
    }
}

/// Whether a text cell is a missing value: empty (after trimming) or one of [`MISSING_TOKENS`].
pub fn is_missing(text: &str) -> bool {
    let text = text.trim();
    text.is_empty() || MISSING_TOKENS.contains(&text)
}

/// A number as categorical text: integers without a fraction (`3`), others as Rust prints them.
pub fn number_text(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x}") }
}

/// A finite number from text, or why not.
pub fn parse_number(text: &str) -> Result<f64, &'static str> {
    match text.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err("is not a finite number"),
        Err(_) => Err("is not a number"),
    }
}

/// Why a schema cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

impl TabularSchema {
    /// Parses and checks a [`TABULAR_FILE`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, SchemaError> {
        let schema: Self = serde_json::from_slice(bytes).map_err(|e| SchemaError(e.to_string()))?;
        schema.check()?;
        Ok(schema)
    }

    /// Checks the limits and that names are unique.
    pub fn check(&self) -> Result<(), SchemaError> {
        if self.columns.is_empty() || self.columns.len() > MAX_COLUMNS {
            return Err(SchemaError(format!("{} columns; 1 to {MAX_COLUMNS} are supported", self.columns.len())));
        }
        let mut names = std::collections::HashSet::new();
        for column in &self.columns {
            if column.name.is_empty() || column.name.len() > MAX_COLUMN_NAME_BYTES || !names.insert(&column.name) {
                return Err(SchemaError(format!(
                    "column name {:?} is empty, longer than {MAX_COLUMN_NAME_BYTES} bytes or repeated",
                    column.name
                )));
            }
            match &column.kind {
                ColumnKind::Numeric { min, max } if !(min.is_finite() && max.is_finite() && min <= max) => {
                    return Err(SchemaError(format!("column {:?}: range [{min}, {max}] is not valid", column.name)));
                }
                ColumnKind::Categorical { vocabulary }
                    if vocabulary.len() > MAX_VOCABULARY || vocabulary.iter().any(|v| v.len() > MAX_CATEGORY_BYTES) =>
                {
                    return Err(SchemaError(format!(
                        "column {:?}: more than {MAX_VOCABULARY} values or a value longer than \
                         {MAX_CATEGORY_BYTES} bytes",
                        column.name
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Number of feature columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether there are no columns (never, once checked).
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Position of a column by name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Encodes one row given as one value per column (schema order) into `row` (cleared
    /// first), with a warning per unseen category or out-of-range number, or every bad field.
    /// `prefix` is put before column names in errors (e.g. `features.`).
    pub fn encode(
        &self,
        values: &[Value<'_>],
        prefix: &str,
        row: &mut Vec<f64>,
        warnings: &mut Vec<TabularWarning>,
    ) -> Result<(), InvalidInput> {
        assert_eq!(values.len(), self.columns.len(), "one value per column");
        row.clear();
        let mut errors = Vec::new();
        for (column, value) in self.columns.iter().zip(values) {
            match column.encode(*value, warnings) {
                Ok(x) => row.push(x),
                Err(reason) => {
                    errors.push(FieldError { field: format!("{prefix}{}", column.name), reason });
                    row.push(f64::NAN);
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(InvalidInput { errors }) }
    }
}

impl Column {
    /// The missing/unseen code of a categorical column.
    pub fn missing_code(vocabulary: &[String]) -> f64 {
        vocabulary.len() as f64
    }

    /// The feature value of one value, or why it is refused.
    pub fn encode(&self, value: Value<'_>, warnings: &mut Vec<TabularWarning>) -> Result<f64, String> {
        match &self.kind {
            ColumnKind::Numeric { min, max } => {
                let x = match value {
                    Value::Missing => return Ok(f64::NAN),
                    Value::Text(t) if is_missing(t) => return Ok(f64::NAN),
                    Value::Number(x) if x.is_finite() => x,
                    Value::Number(_) => return Err("must be a finite number".to_owned()),
                    Value::Text(t) => parse_number(t).map_err(|why| {
                        let shown: String = t.chars().take(32).collect();
                        format!("{shown:?} {why}; the column is numeric")
                    })?,
                };
                if x < *min || x > *max {
                    warnings.push(TabularWarning::OutOfRange {
                        column: self.name.clone(),
                        value: x,
                        min: *min,
                        max: *max,
                    });
                }
                Ok(x)
            }
            ColumnKind::Categorical { vocabulary } => {
                let owned;
                let text = match value {
                    Value::Missing => return Ok(Self::missing_code(vocabulary)),
                    Value::Text(t) if is_missing(t) => return Ok(Self::missing_code(vocabulary)),
                    Value::Text(t) => t.trim(),
                    Value::Number(x) => {
                        owned = number_text(x);
                        owned.as_str()
                    }
                };
                match vocabulary.iter().position(|v| v == text) {
                    Some(code) => Ok(code as f64),
                    None => {
                        let end = text.char_indices().nth(MAX_CATEGORY_BYTES).map_or(text.len(), |(i, _)| i);
                        warnings
                            .push(TabularWarning::Unseen { column: self.name.clone(), value: text[..end].to_owned() });
                        Ok(Self::missing_code(vocabulary))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
