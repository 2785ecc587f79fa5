//! The model card: a Markdown page with the metrics, a confusion-matrix chart and a reliability
//! (calibration) diagram, both as self-contained SVG files beside it. A sales forecast's card is
//! in [`sales`].

pub mod sales;

use std::fmt::Write as _;

use crate::artifact::Manifest;
use crate::metrics::Metrics;
use crate::training::Evaluation;

/// File name of the card.
pub const CARD_FILE: &str = "card.md";
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
}

impl<'a> CardInput<'a> {
    /// The card written into a freshly trained basket classifier (its test-split `metrics`).
    pub fn for_training(manifest: &'a Manifest, metrics: &'a Metrics) -> Self {
        Self {
            manifest,
            evaluated_on: format!(
                "the held-out test split: customers not seen in training ({} baskets)",
                manifest.training.rows.test
            ),
            metrics,
            bayes: None,
        }
    }

    /// The card of an evaluation run.
    pub fn for_evaluation(manifest: &'a Manifest, evaluation: &'a Evaluation) -> Self {
        Self {
            manifest,
            evaluated_on: format!("`{}` ({} labelled baskets)", evaluation.data.file, evaluation.data.labelled),
            metrics: &evaluation.metrics,
            bayes: evaluation.bayes.as_ref(),
        }
    }
}

/// Renders the card and its charts as `(file name, content)` pairs.
pub fn render(input: &CardInput<'_>) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (CARD_FILE, markdown(input).into_bytes()),
        (CONFUSION_FILE, confusion_svg(input.metrics).into_bytes()),
        (CALIBRATION_FILE, calibration_svg(input.metrics).into_bytes()),
    ]
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn markdown(input: &CardInput<'_>) -> String {
    let m = input.manifest;
    let metrics = input.metrics;
    let mut s = String::new();
    let _ = writeln!(s, "# Model card: {} {}\n", m.name, m.version);
    let _ = writeln!(
        s,
        "Predicts `{}` of a shopping basket: {}.\n",
        m.target,
        m.classes.iter().map(|c| format!("`{}` {}", c.code, c.label)).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| created | {} |", m.created_at);
    let _ = writeln!(s, "| algorithm | {} |", m.training.algorithm);
    let _ = writeln!(s, "| rounds kept / run | {} / {} |", m.training.best_iteration, m.training.rounds_run);
    let _ = writeln!(
        s,
        "| baskets train / validation / test | {} / {} / {} (split by customer) |",
        m.training.rows.train, m.training.rows.validation, m.training.rows.test
    );
    let _ = writeln!(
        s,
        "| training data | `{}`, {} lines, {} |",
        m.provenance.data_file, m.provenance.data_lines, m.provenance.data_fingerprint
    );
    let _ = writeln!(s, "| seed | {} |", m.provenance.seed);
    let _ = writeln!(s, "| code | {} |\n", m.provenance.code_version);

    let _ = writeln!(s, "## Evaluation\n\nOn {}.\n", input.evaluated_on);
    match input.bayes {
        Some(b) => {
            let _ = writeln!(s, "| metric | model | Bayes-optimal (true probabilities) |\n|---|---|---|");
            let _ = writeln!(s, "| accuracy | {} | {} |", pct(metrics.accuracy), pct(b.accuracy));
            let _ = writeln!(s, "| macro-F1 | {} | {} |", pct(metrics.macro_f1), pct(b.macro_f1));
            let _ = writeln!(s, "| log loss | {:.4} | {:.4} |", metrics.log_loss, b.log_loss);
            let _ = writeln!(s, "| ECE | {:.4} | {:.4} |", metrics.ece, b.ece);
        }
        None => {
            let _ = writeln!(s, "| metric | value |\n|---|---|");
            let _ = writeln!(s, "| accuracy | {} |", pct(metrics.accuracy));
            let _ = writeln!(s, "| macro-F1 | {} |", pct(metrics.macro_f1));
            let _ = writeln!(s, "| log loss | {:.4} |", metrics.log_loss);
            let _ = writeln!(s, "| ECE ({} bins) | {:.4} |", crate::metrics::CALIBRATION_BINS, metrics.ece);
        }
    }
    let _ = writeln!(s, "\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|");
    for c in &metrics.per_class {
        let _ =
            writeln!(s, "| {} | {} | {} | {} | {} |", c.class, pct(c.precision), pct(c.recall), pct(c.f1), c.support);
    }
    let _ = writeln!(s, "\n![Confusion matrix]({CONFUSION_FILE})\n\n![Calibration]({CALIBRATION_FILE})\n");

    let _ = writeln!(s, "## Inputs\n");
    for f in m.input_schema.iter().flat_map(|schema| &schema.features) {
        match f {
            crate::features::FeatureSpec::Numeric { name, min, max, .. } => {
                let _ = writeln!(s, "- `{name}`: number, training range {min} to {max}");
            }
            crate::features::FeatureSpec::Categorical { name, vocabulary } => {
                let _ = writeln!(
                    s,
                    "- `{name}`: category, {} known values; anything else is scored as unseen",
                    vocabulary.len()
                );
            }
        }
    }
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

const CLASS_COLOURS: [&str; 3] = ["#d95f02", "#7570b3", "#1b9e77"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn confusion_svg(metrics: &Metrics) -> String {
    let k = metrics.confusion.len();
    let cell = 90.0;
    let (left, top) = (110.0, 60.0);
    let size = left + cell * k as f64 + 20.0;
    let height = top + cell * k as f64 + 50.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{height}" viewBox="0 0 {size} {height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">Confusion matrix (row share)</text>"#,
        size / 2.0
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">predicted</text>"#,
        left + cell * k as f64 / 2.0,
        top - 22.0
    );
    let _ = write!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">true</text>"#,
        top + cell * k as f64 / 2.0,
        top + cell * k as f64 / 2.0
    );
    for (t, row) in metrics.confusion.iter().enumerate() {
        let total: u64 = row.iter().sum();
        let name = escape(&metrics.per_class[t].class);
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text>"#,
            left - 10.0,
            top + cell * (t as f64 + 0.5) + 5.0
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{name}</text>"#,
            left + cell * (t as f64 + 0.5),
            top - 6.0
        );
        for (p, &count) in row.iter().enumerate() {
            let share = if total > 0 { count as f64 / total as f64 } else { 0.0 };
            let (x, y) = (left + cell * p as f64, top + cell * t as f64);
            let text = if share > 0.55 { "white" } else { "black" };
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#08519c" fill-opacity="{:.3}" stroke="#999"/><text x="{}" y="{}" text-anchor="middle" fill="{text}">{}</text><text x="{}" y="{}" text-anchor="middle" fill="{text}" font-size="11">{count}</text>"##,
                0.05 + 0.9 * share,
                x + cell / 2.0,
                y + cell / 2.0,
                pct(share),
                x + cell / 2.0,
                y + cell / 2.0 + 16.0,
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">accuracy {}, macro-F1 {}</text></svg>"#,
        size / 2.0,
        height - 15.0,
        pct(metrics.accuracy),
        pct(metrics.macro_f1)
    );
    s
}

fn calibration_svg(metrics: &Metrics) -> String {
    let (w, h, pad) = (380.0, 380.0, 50.0);
    let plot = w - 2.0 * pad;
    let px = |x: f64| pad + x * plot;
    let py = |y: f64| h - pad - y * plot;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">Calibration (ECE {:.4})</text>"#,
        w / 2.0,
        metrics.ece
    );
    let _ = write!(s, r##"<rect x="{pad}" y="{pad}" width="{plot}" height="{plot}" fill="none" stroke="#999"/>"##);
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{tick}</text><text x="{}" y="{}" text-anchor="end">{tick}</text>"#,
            px(tick),
            h - pad + 16.0,
            pad - 6.0,
            py(tick) + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">mean confidence of the predicted class</text>"#,
        w / 2.0,
        h - 12.0
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">share correct</text>"#,
        h / 2.0,
        h / 2.0
    );
    let _ = write!(
        s,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#bbb" stroke-dasharray="4 3"/>"##,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    let total: u64 = metrics.calibration.iter().map(|b| b.count).sum::<u64>().max(1);
    let points: Vec<String> =
        metrics.calibration.iter().map(|b| format!("{:.1},{:.1}", px(b.confidence), py(b.accuracy))).collect();
    let _ = write!(
        s,
        r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
        points.join(" "),
        CLASS_COLOURS[1]
    );
    for b in &metrics.calibration {
        let r = 3.0 + 12.0 * (b.count as f64 / total as f64).sqrt();
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="{}" fill-opacity="0.6"><title>{:.2}-{:.2}: {} rows, confidence {:.3}, correct {:.3}</title></circle>"#,
            px(b.confidence),
            py(b.accuracy),
            CLASS_COLOURS[1],
            b.lower,
            b.upper,
            b.count,
            b.confidence,
            b.accuracy
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::evaluate;

    #[test]
    fn charts_are_well_formed_svg() {
        let classes = vec!["LA".to_owned(), "MM".to_owned(), "UM".to_owned()];
        let m = evaluate(&classes, &[0.6, 0.3, 0.1, 0.2, 0.7, 0.1, 0.1, 0.3, 0.6], &[0, 1, 1]);
        for svg in [confusion_svg(&m), calibration_svg(&m)] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
            assert_eq!(svg.matches("<svg").count(), 1);
            assert!(!svg.contains("NaN"));
        }
        assert!(confusion_svg(&m).contains("66.67%"));
    }
}
