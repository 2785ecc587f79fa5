//! A tabular model's v2 inputs: one tensor per column (`FP64` for a numeric column, `BYTES` for a
//! categorical one, shape `[N]`), or one tensor of any name holding the rows, shape
//! `[N, n_columns]`, row-major. `null` in the data is a missing value.

use retail_model::tabular::{ColumnKind, TabularSchema};

use super::{NUMERIC, Tensor, checked_data, quote};
use crate::scoring::ScoreError;
use crate::scoring::batch::Batch;
use crate::scoring::slot::Slot;
use crate::scoring::tabular::{column_list, encode_slots};

/// A tabular model's inputs, one per column in schema order, with their v2 datatypes.
pub fn tabular_inputs(schema: &TabularSchema) -> Vec<(&str, &'static str)> {
    let datatype = |kind: &ColumnKind| match kind {
        ColumnKind::Numeric { .. } => "FP64",
        ColumnKind::Categorical { .. } => "BYTES",
    };
    schema.columns.iter().map(|c| (c.name.as_str(), datatype(&c.kind))).collect()
}

/// Encodes the rows of one `[N, n_columns]` tensor into the batch; the number of rows, or why
/// the tensor cannot be read (its datatype, shape or size). A stop (cancellation) is recorded
/// in the batch and reported by its `finish`.
pub(super) fn push_matrix(
    schema: &TabularSchema,
    tensor: Tensor<'_>,
    max_rows: usize,
    batch: &mut Batch<'_>,
) -> Result<usize, ScoreError> {
    let bad = |message: String| Err(ScoreError::Request(message));
    let name = match &tensor.name {
        Slot::Str(name) => quote(name),
        _ => "\"\"".to_owned(),
    };
    let n = schema.len();
    let given = match &tensor.datatype {
        Slot::Str(s) => s.to_string(),
        _ => String::new(),
    };
    if given != "BYTES" && !NUMERIC.contains(&given.as_str()) {
        return bad(format!("input {name} has datatype {}, expected FP64", quote(&given)));
    }
    let matrix = tensor.shape.as_ref().is_some_and(|s| s.dims == 2 && s.counts.get(1) == Some(&Some(n as u64)));
    if !matrix {
        let shape = tensor.shape.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string);
        return bad(format!(
            "input {name}: shape {shape} is not [N, {n}] (N rows of the model's {n} columns: {}); or send one input per column",
            column_list(schema)
        ));
    }
    let data = checked_data(&name, tensor)?;
    let rows = data.len() / n;
    if rows == 0 || rows > max_rows {
        let rows = if rows > max_rows { format!("more than {max_rows}") } else { rows.to_string() };
        return bad(format!("inputs must have 1 to {max_rows} rows, got {rows}"));
    }
    for row in data.chunks(n) {
        if batch.push(|| encode_slots(schema, row, "")).is_err() {
            break;
        }
    }
    Ok(rows)
}
