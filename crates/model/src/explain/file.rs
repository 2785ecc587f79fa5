//! The artifact's optional `explain.json`: each tree's leaf covers (the rows that reached each
//! leaf) and global importance, both computed from the rows a model was trained on (or, for an
//! import, the import's `--data`).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::forest::Forest;
use super::{Attribution, ExplainError, Explainer, Space};
use crate::engine::EnsembleSpec;

/// File name of the covers and importance in an artifact.
pub const EXPLAIN_FILE: &str = "explain.json";

/// The `format` tag of [`ExplainFile`].
const FORMAT: &str = "retail-explain/1";

/// Most rows global importance is averaged over: an evenly spaced sample of the training rows
/// beyond this, so training time stays bounded (the mean of |contribution| over 20,000 rows is
/// within a percent or so of the full mean).
pub const IMPORTANCE_ROWS: usize = 20_000;

/// Covers and importance of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainFile {
    /// Always `retail-explain/1`.
    pub format: String,
    /// Per tree (in `model.json` order), the training rows that reached each of its leaves.
    pub leaf_covers: Vec<Vec<f64>>,
    /// Global importance; `None` when it could not be computed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub importance: Option<Importance>,
}

/// Global importance: mean |contribution| of each input field over the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// Rows averaged over.
    pub rows: usize,
    /// The space the contributions are in.
    pub space: Space,
    /// Output (class) names, in the order of [`FieldImportance::per_output`].
    pub outputs: Vec<String>,
    /// Fields, most important first.
    pub fields: Vec<FieldImportance>,
}

/// One field's global importance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldImportance {
    /// Input field.
    pub field: String,
    /// Mean over rows of the sum over outputs of |contribution|.
    pub mean_abs: f64,
    /// Mean |contribution| per output.
    pub per_output: Vec<f64>,
}

impl ExplainFile {
    /// Covers of `spec`'s leaves from `rows` (row-major engine features), and importance over
    /// (a sample of) the same rows. Fails when some leaf is reached by no row: TreeSHAP needs a
    /// positive cover everywhere.
    pub fn of_rows(
        spec: &EnsembleSpec,
        rows: &[f64],
        attribution: Attribution,
        regression: bool,
    ) -> Result<Self, ExplainError> {
        Self::of_covers(spec, leaf_covers(spec, rows), rows, attribution, regression)
    }

    /// The file of `spec` with `leaf_covers` known (a trainer counts them as it grows the
    /// trees), and importance over (a sample of) `rows`.
    pub fn of_covers(
        spec: &EnsembleSpec,
        leaf_covers: Vec<Vec<f64>>,
        rows: &[f64],
        attribution: Attribution,
        regression: bool,
    ) -> Result<Self, ExplainError> {
        let explainer = Explainer::new(spec, &leaf_covers, attribution, regression).map_err(|e| match e {
            ExplainError::Covers(reason) => {
                ExplainError::NoCovers { reason: format!("the data rows do not reach every leaf: {reason}") }
            }
            other => other,
        })?;
        let importance = importance(&explainer, &spec.classes, rows);
        Ok(Self { format: FORMAT.to_owned(), leaf_covers, importance: Some(importance) })
    }

    /// Parses the file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        let file: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if file.format != FORMAT {
            return Err(format!("format {:?} is not supported (expected {FORMAT:?})", file.format));
        }
        Ok(file)
    }

    /// The file's JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// How many of `rows` reach each leaf of each tree.
pub fn leaf_covers(spec: &EnsembleSpec, rows: &[f64]) -> Vec<Vec<f64>> {
    let forest = Forest::of(spec);
    let n = spec.n_features;
    (0..forest.trees.len())
        .into_par_iter()
        .map(|t| {
            let mut counts = vec![0u64; forest.trees[t].leaves.len()];
            for row in rows.chunks(n) {
                counts[forest.leaf_of(t, row)] += 1;
            }
            counts.into_iter().map(|c| c as f64).collect()
        })
        .collect()
}

/// Mean |contribution| per field and output over an evenly spaced sample of at most
/// [`IMPORTANCE_ROWS`] rows.
fn importance(explainer: &Explainer, outputs: &[String], rows: &[f64]) -> Importance {
    let n_features = explainer.n_features;
    let n_rows = rows.len() / n_features.max(1);
    let step = n_rows.div_ceil(IMPORTANCE_ROWS).max(1);
    let sample: Vec<usize> = (0..n_rows).step_by(step).collect();
    let n_fields = explainer.fields().len();
    let n_out = outputs.len();
    // Explained in blocks of rows, tree by tree: each tree's tables are read once per block.
    let sampled: Vec<f64> = sample.iter().flat_map(|&r| &rows[r * n_features..(r + 1) * n_features]).copied().collect();
    let explained = explainer.explain_batch(&sampled);
    // Summed in row order, so the file is the same bit for bit whatever the thread count.
    let mut sums = vec![0.0; n_out * n_fields];
    for explanation in &explained {
        for (s, c) in sums.iter_mut().zip(&explanation.contributions) {
            *s += c.abs();
        }
    }
    let count = sample.len().max(1) as f64;
    let mut fields: Vec<FieldImportance> = explainer
        .fields()
        .iter()
        .enumerate()
        .map(|(f, field)| {
            let per_output: Vec<f64> = (0..n_out).map(|c| sums[c * n_fields + f] / count).collect();
            FieldImportance { field: field.clone(), mean_abs: per_output.iter().sum(), per_output }
        })
        .collect();
    fields.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs).then_with(|| a.field.cmp(&b.field)));
    Importance { rows: sample.len(), space: explainer.space(), outputs: outputs.to_vec(), fields }
}
