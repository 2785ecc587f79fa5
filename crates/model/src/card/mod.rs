//! The model card: a Markdown page with the metrics, a confusion-matrix chart, a reliability
//! (calibration) diagram and a feature-importance chart, all as self-contained SVG files beside
//! it. A sales forecast's card is in [`sales`]. Every number goes through [`format`]: counts
//! with thousands separators, decimals to a fixed precision.

mod charts;
pub mod format;
pub mod importance;
pub mod sales;
mod svg;

use std::fmt::Write as _;

use crate::artifact::Manifest;
use crate::explain::Importance;
use crate::metrics::Metrics;
use crate::training::Evaluation;
use format::{count, fixed, pct, rows, sig};

pub use importance::IMPORTANCE_FILE;

pub use crate::artifact::CARD_FILE;
/// File name of the confusion-matrix chart.
pub const CONFUSION_FILE: &str = "confusion_matrix.svg";
/// File name of the calibration chart.
pub const CALIBRATION_FILE: &str = "calibration.svg";

/// What a card describes.
#[derive(Debug, Clone)]
pub struct CardInput<'a> {
    /// The model's manifest.
    pub manifest: &'a Manifest,
    /// What the metrics were computed on.
    pub evaluated_on: String,
    /// The metrics.
    pub metrics: &'a Metrics,
    /// Metrics of the true probabilities on the same rows, when known.
    pub bayes: Option<&'a Metrics>,
    /// Global importance from the training rows (`explain.json`), when the artifact has it.
    pub importance: Option<&'a Importance>,
}

impl<'a> CardInput<'a> {
    /// The card written into a freshly trained basket classifier (its test-split `metrics`).
    pub fn for_training(manifest: &'a Manifest, metrics: &'a Metrics, importance: Option<&'a Importance>) -> Self {
        Self {
            manifest,
            evaluated_on: format!(
                "the held-out test split: customers not seen in training ({} baskets)",
                rows(manifest.training.rows.test)
            ),
            metrics,
            bayes: None,
            importance,
        }
    }

    /// The card of an evaluation run.
    pub fn for_evaluation(
        manifest: &'a Manifest,
        evaluation: &'a Evaluation,
        importance: Option<&'a Importance>,
    ) -> Self {
        Self {
            manifest,
            evaluated_on: format!("`{}` ({} labelled baskets)", evaluation.data.file, rows(evaluation.data.labelled)),
            metrics: &evaluation.metrics,
            bayes: evaluation.bayes.as_ref(),
            importance,
        }
    }
}

/// Renders the card and its charts as `(file name, content)` pairs (the importance chart only
/// when the artifact records importance).
pub fn render(input: &CardInput<'_>) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        (CARD_FILE, markdown(input).into_bytes()),
        (CONFUSION_FILE, charts::confusion_svg(input.metrics).into_bytes()),
        (CALIBRATION_FILE, charts::calibration_svg(input.metrics).into_bytes()),
    ];
    files.extend(importance::chart(input.importance));
    files
}

fn markdown(input: &CardInput<'_>) -> String {
    let mut s = String::new();
    header(&mut s, input.manifest);
    evaluation(&mut s, input);
    importance::section(&mut s, input.importance);
    inputs(&mut s, input.manifest);
    let _ = writeln!(
        s,
        "\n## Intended use and limits\n\n\
         Scores baskets for retail analytics (assortment, pricing and promotion targeting by basket \
         mix). It is not meant for decisions about individual people. Trained on data in the \
         dunnhumby schema; when the training data is the synthetic generator's, the metrics describe \
         that world, not a real retailer. Category values never seen in training are scored as \
         \"unseen\" and reported in each answer's warnings."
    );
    s
}

fn header(s: &mut String, m: &Manifest) {
    let _ = writeln!(s, "# Model card: {} {}\n", m.name, m.version);
    let _ = writeln!(
        s,
        "Predicts `{}` of a shopping basket: {}.\n",
        m.target,
        m.classes.iter().map(|c| format!("`{}` {}", c.code, c.label)).collect::<Vec<_>>().join(", ")
    );
    let t = &m.training;
    let p = &m.provenance;
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| created | {} |", m.created_at);
    let _ = writeln!(s, "| algorithm | {} |", t.algorithm);
    let _ = writeln!(s, "| rounds kept / run | {} / {} |", rows(t.best_iteration), rows(t.rounds_run));
    let _ = writeln!(
        s,
        "| baskets train / validation / test | {} / {} / {} (split by customer) |",
        rows(t.rows.train),
        rows(t.rows.validation),
        rows(t.rows.test)
    );
    let _ = writeln!(s, "| training data | `{}`, {} lines, {} |", p.data_file, count(p.data_lines), p.data_fingerprint);
    let _ = writeln!(s, "| seed | {} |", p.seed);
    let _ = writeln!(s, "| code | {} |\n", p.code_version);
}

fn evaluation(s: &mut String, input: &CardInput<'_>) {
    let metrics = input.metrics;
    let _ = writeln!(s, "## Evaluation\n\nOn {}.\n", input.evaluated_on);
    let bins = crate::metrics::CALIBRATION_BINS;
    match input.bayes {
        Some(b) => {
            let _ = writeln!(s, "| metric | model | Bayes-optimal (true probabilities) |\n|---|---|---|");
            let _ = writeln!(s, "| accuracy | {} | {} |", pct(metrics.accuracy), pct(b.accuracy));
            let _ = writeln!(s, "| macro-F1 | {} | {} |", pct(metrics.macro_f1), pct(b.macro_f1));
            let _ = writeln!(s, "| log loss | {} | {} |", fixed(metrics.log_loss, 4), fixed(b.log_loss, 4));
            let _ = writeln!(s, "| ECE ({bins} bins) | {} | {} |", fixed(metrics.ece, 4), fixed(b.ece, 4));
        }
        None => {
            let _ = writeln!(s, "| metric | value |\n|---|---|");
            let _ = writeln!(s, "| accuracy | {} |", pct(metrics.accuracy));
            let _ = writeln!(s, "| macro-F1 | {} |", pct(metrics.macro_f1));
            let _ = writeln!(s, "| log loss | {} |", fixed(metrics.log_loss, 4));
            let _ = writeln!(s, "| ECE ({bins} bins) | {} |", fixed(metrics.ece, 4));
        }
    }
    let _ = writeln!(s, "\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|");
    for c in &metrics.per_class {
        let (p, r, f1) = (pct(c.precision), pct(c.recall), pct(c.f1));
        let _ = writeln!(s, "| {} | {p} | {r} | {f1} | {} |", c.class, count(c.support));
    }
    let _ = writeln!(s, "\n![Confusion matrix]({CONFUSION_FILE})\n\n![Calibration]({CALIBRATION_FILE})\n");
    let _ = writeln!(
        s,
        "Calibration: the baskets in each bin of top-class confidence, how confident the model \
         was on them and how often it was right (the grey bars of the chart are these counts).\n"
    );
    let _ = writeln!(s, "| confidence | baskets | mean confidence | share correct |\n|---|---|---|---|");
    for b in &metrics.calibration {
        let (lower, upper) = (fixed(b.lower, 2), fixed(b.upper, 2));
        let _ =
            writeln!(s, "| {lower}–{upper} | {} | {} | {} |", count(b.count), fixed(b.confidence, 3), pct(b.accuracy));
    }
    s.push('\n');
}

fn inputs(s: &mut String, m: &Manifest) {
    let _ = writeln!(s, "## Inputs\n");
    for f in m.input_schema.iter().flat_map(|schema| &schema.features) {
        match f {
            crate::features::FeatureSpec::Numeric { name, min, max, .. } => {
                let _ = writeln!(s, "- `{name}`: number, training range {} to {}", sig(*min, 6), sig(*max, 6));
            }
            crate::features::FeatureSpec::Categorical { name, vocabulary } => {
                let _ = writeln!(
                    s,
                    "- `{name}`: category, {} known values; anything else is scored as unseen",
                    rows(vocabulary.len())
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
