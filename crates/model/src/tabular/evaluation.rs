//! Scoring a tabular model on labelled rows: the task's usual metrics (classification:
//! accuracy, macro-F1, log loss, ECE, per-class scores, ROC AUC of a binary classifier;
//! regression: RMSE, MAE, R², and Poisson deviance, WAPE and bias where defined) and the model
//! card.

use std::fmt::Write;
use std::path::Path;

use super::data::{self, Roles, TableError};
use super::training::{OwnedLabels, Target, Task, label_texts, labels_of, target};
use super::{ColumnKind, TabularSchema};
use crate::artifact::{Manifest, ModelMetrics};
use crate::card::format::{fixed, rows, sig};
use crate::engine::Engine;
use crate::explain::Importance;
use crate::metrics::{self, evaluate, evaluate_regression};

/// Predictions of a model on labelled rows.
#[derive(Debug, Clone)]
pub struct Scored {
    /// Predictions: probabilities row-major (classes wide), or one value per row.
    pub predictions: Vec<f64>,
    /// The labels.
    pub labels: Vec<f64>,
    /// Output names (classes, or the label of a regression).
    pub outputs: Vec<String>,
    /// Whether the model is a classifier.
    pub classifier: bool,
    /// Values scored as unseen, per feature column.
    pub unseen: Vec<u64>,
}

impl Scored {
    /// Scores encoded rows `x` with `engine`.
    pub fn new(engine: &Engine, x: &[f64], labels: OwnedLabels, outputs: &[String], unseen: Vec<u64>) -> Self {
        let n = x.len() / engine.n_features().max(1);
        let mut predictions = vec![0.0; n * engine.n_classes()];
        engine.predict_batch_parallel(x, &mut predictions);
        let (labels, classifier) = match labels {
            OwnedLabels::Classes(y) => (y.iter().map(|&c| f64::from(c)).collect(), true),
            OwnedLabels::Values(y) => (y, false),
        };
        Self { predictions, labels, outputs: outputs.to_vec(), classifier, unseen }
    }

    /// The metrics of the task.
    pub fn metrics(&self) -> ModelMetrics {
        if self.classifier {
            let labels: Vec<usize> = self.labels.iter().map(|&c| c as usize).collect();
            let mut m = evaluate(&self.outputs, &self.predictions, &labels);
            if self.outputs.len() == 2 {
                let scores: Vec<f64> = self.predictions.chunks(2).map(|p| p[1]).collect();
                let positive: Vec<bool> = labels.iter().map(|&c| c == 1).collect();
                m.roc_auc = metrics::roc_auc(&scores, &positive);
            }
            ModelMetrics::Classification(m)
        } else {
            let mut m = evaluate_regression(&self.predictions, &self.labels);
            m.r2 = metrics::r2(&self.predictions, &self.labels);
            ModelMetrics::Regression(m)
        }
    }
}

/// Reads a labelled CSV with the model's columns (any order, extra columns ignored), encodes it
/// with `schema` and scores it. Labels must be the model's classes (or numbers, for a
/// regression).
pub fn score_file(
    path: &Path,
    schema: &TabularSchema,
    label: &str,
    outputs: &[String],
    engine: &Engine,
) -> Result<Scored, TableError> {
    let roles = schema_roles(schema, label);
    let table = data::read_table(path, &roles)?;
    let all: Vec<usize> = (0..table.rows).collect();
    let target = if engine.n_classes() > 1 {
        // Labels are mapped onto the model's classes (a test file may hold fewer of them).
        let index: std::collections::HashMap<&str, u8> =
            outputs.iter().enumerate().map(|(i, c)| (c.as_str(), i as u8)).collect();
        let texts = label_texts(&table.label);
        let codes: Result<Vec<u8>, TableError> = texts
            .iter()
            .map(|t| {
                index.get(t.as_str()).copied().ok_or_else(|| TableError::Column {
                    column: label.to_owned(),
                    reason: format!("has the class {t:?}, which the model does not know ({})", outputs.join(", ")),
                })
            })
            .collect();
        Target::Classes(codes?, outputs.to_vec())
    } else {
        target(&table.label, label, Some(Task::Regression))?
    };
    let (x, unseen) = data::encode_rows(&table, schema, &all);
    Ok(Scored::new(engine, &x, labels_of(&target, &all), outputs, unseen))
}

/// The roles that read a file with exactly the schema's columns, typed as the schema says.
pub fn schema_roles(schema: &TabularSchema, label: &str) -> Roles {
    let of = |categorical: bool| {
        schema
            .columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Categorical { .. }) == categorical)
            .map(|c| c.name.clone())
            .collect()
    };
    Roles {
        label: label.to_owned(),
        categorical: of(true),
        numeric: of(false),
        features: Some(schema.columns.iter().map(|c| c.name.clone()).collect()),
        ..Roles::default()
    }
}

/// The model card (`card.md`) of a tabular model: metrics, feature importance (its chart is
/// [`crate::card::importance::chart`]'s file beside the card), columns.
pub fn card(manifest: &Manifest, schema: &TabularSchema, scored: &Scored, importance: Option<&Importance>) -> String {
    let mut s = String::new();
    let t = &manifest.training;
    let _ = writeln!(s, "# Model card: {} {}\n", manifest.name, manifest.version);
    let what = if scored.classifier {
        format!("the class of `{}` ({})", manifest.target, scored.outputs.join(", "))
    } else {
        format!("the value of `{}`", manifest.target)
    };
    let _ = writeln!(s, "Predicts {what} from {} columns of a table.\n", schema.len());
    let _ = writeln!(
        s,
        "- Trained: {} on `{}` ({})",
        manifest.created_at, manifest.provenance.data_file, manifest.provenance.data_fingerprint
    );
    let _ = writeln!(s, "- Algorithm: {}", t.algorithm);
    let _ = writeln!(
        s,
        "- Rows: {} training, {} validation, {} test; {} rounds kept of {} run\n",
        rows(t.rows.train),
        rows(t.rows.validation),
        rows(t.rows.test),
        rows(t.best_iteration),
        rows(t.rounds_run)
    );
    let _ = writeln!(s, "## Held-out metrics\n");
    match &manifest.metrics {
        ModelMetrics::Classification(m) => {
            let _ = writeln!(s, "| rows | accuracy | macro-F1 | log loss | ECE | ROC AUC |\n|---|---|---|---|---|---|");
            let auc = m.roc_auc.map_or_else(|| "n/a".to_owned(), |a| fixed(a, 4));
            let (accuracy, f1, loss, ece) =
                (fixed(m.accuracy, 4), fixed(m.macro_f1, 4), fixed(m.log_loss, 4), fixed(m.ece, 4));
            let _ = writeln!(s, "| {} | {accuracy} | {f1} | {loss} | {ece} | {auc} |\n", rows(m.rows));
        }
        ModelMetrics::Regression(m) => {
            let r2 = m.r2.map_or_else(|| "n/a".to_owned(), |r| fixed(r, 4));
            let _ = writeln!(s, "| rows | RMSE | MAE | R² |\n|---|---|---|---|");
            let _ = writeln!(s, "| {} | {} | {} | {r2} |\n", rows(m.rows), fixed(m.rmse, 4), fixed(m.mae, 4));
        }
    }
    crate::card::importance::section(&mut s, importance);
    let _ = writeln!(s, "## Columns\n\n| column | type | training range or values | missing |\n|---|---|---|---|");
    for c in &schema.columns {
        let (kind, what) = match &c.kind {
            ColumnKind::Numeric { min, max } => ("numeric", format!("{} to {}", sig(*min, 6), sig(*max, 6))),
            ColumnKind::Categorical { vocabulary } => ("categorical", format!("{} values", rows(vocabulary.len()))),
        };
        let _ = writeln!(s, "| `{}` | {kind} | {what} | {}% |", c.name, fixed(100.0 * c.missing_share, 1));
    }
    let _ = writeln!(
        s,
        "\nMissing values (empty, NA, NaN, null) follow the direction each split learned; a category \
         not seen in training is scored as missing, with a warning."
    );
    s
}
