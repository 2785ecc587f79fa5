//! The model card of a sales forecast: a Markdown page with the regression metrics (and the
//! Bayes-optimal ones when known), a predicted-against-actual chart over equal-count bins of the
//! prediction, the mean error by weekday and by promotion, and the feature importance, all as
//! SVG files beside it.

use std::fmt::Write as _;

use super::format::{self, count, fixed, rows};
use super::svg::{self, escape};
use super::{CARD_FILE, importance};
use crate::artifact::Manifest;
use crate::explain::Importance;
use crate::forecast::evaluation::{ResidualGroup, SalesDiagnostics, SalesEvaluation};
use crate::forecast::training::SalesFitted;
use crate::forecast::{FEATURE_NAMES, SalesStats};
use crate::metrics::RegressionMetrics;

/// File name of the predicted-against-actual chart.
pub const PREDICTED_FILE: &str = "predicted_vs_actual.svg";
/// File name of the residuals chart.
pub const RESIDUALS_FILE: &str = "residuals.svg";

/// What a forecast's card describes.
#[derive(Debug, Clone)]
pub struct SalesCardInput<'a> {
    /// The model's manifest.
    pub manifest: &'a Manifest,
    /// Its statistics.
    pub stats: &'a SalesStats,
    /// What the metrics were computed on.
    pub evaluated_on: String,
    /// The metrics.
    pub metrics: &'a RegressionMetrics,
    /// Metrics of the true means on the same rows, when known.
    pub bayes: Option<&'a RegressionMetrics>,
    /// Calibration and residuals.
    pub diagnostics: &'a SalesDiagnostics,
    /// Global importance from the training rows (`explain.json`), when the artifact has it.
    pub importance: Option<&'a Importance>,
}

impl<'a> SalesCardInput<'a> {
    /// The card written into a freshly trained forecast (its test-split metrics).
    pub fn for_training(manifest: &'a Manifest, fitted: &'a SalesFitted) -> Self {
        let dates = fitted.split.dates();
        Self {
            manifest,
            stats: &fitted.stats,
            evaluated_on: format!(
                "the held-out test split: the latest days, {} to {} ({} rows), after every training and validation day",
                dates.test.first,
                dates.test.last,
                rows(fitted.rows.test)
            ),
            metrics: &fitted.test_metrics,
            bayes: None,
            diagnostics: &fitted.diagnostics,
            importance: fitted.explain.importance.as_ref(),
        }
    }

    /// The card of an evaluation run.
    pub fn for_evaluation(
        manifest: &'a Manifest,
        stats: &'a SalesStats,
        evaluation: &'a SalesEvaluation,
        importance: Option<&'a Importance>,
    ) -> Self {
        let data = &evaluation.data;
        Self {
            manifest,
            stats,
            evaluated_on: format!(
                "`{}`: every row, {} to {} ({} rows)",
                data.file,
                data.first_date,
                data.last_date,
                rows(data.rows)
            ),
            metrics: &evaluation.metrics,
            bayes: evaluation.bayes.as_ref(),
            diagnostics: &evaluation.diagnostics,
            importance,
        }
    }
}

/// Renders the card and its charts as `(file name, content)` pairs (the importance chart only
/// when the artifact records importance).
pub fn render(input: &SalesCardInput<'_>) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        (CARD_FILE, markdown(input).into_bytes()),
        (PREDICTED_FILE, predicted_svg(input.diagnostics).into_bytes()),
        (RESIDUALS_FILE, residuals_svg(input.diagnostics).into_bytes()),
    ];
    files.extend(importance::chart(input.importance));
    files
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), format::pct)
}

fn signed_pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), format::signed_pct)
}

fn number(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |x| fixed(x, 4))
}

fn header(s: &mut String, m: &Manifest, stats: &SalesStats) {
    let t = &m.training;
    let _ = writeln!(s, "# Model card: {} {}\n", m.name, m.version);
    let _ = writeln!(
        s,
        "Predicts `{}`: units sold of one product in one store on one day, from the store, product, \
         date, price and promotion (`{{\"store_id\": 1, \"product_id\": 123, \"date\": \"2024-01-01\", \
         \"price\": 29.99, \"promotion\": 0}}`).\n",
        m.target
    );
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| created | {} |", m.created_at);
    let _ = writeln!(s, "| algorithm | {} |", t.algorithm);
    if let (Some(metric), Some(loss)) = (&t.validation_metric, t.validation_loss) {
        let _ = writeln!(s, "| validation {metric} | {} (best round) |", fixed(loss, 4));
    }
    let _ = writeln!(s, "| rounds kept / run | {} / {} |", rows(t.best_iteration), rows(t.rounds_run));
    let split = t.rows.dates.as_ref().map_or_else(String::new, |d| {
        format!(
            " (by date: {} to {} / {} to {} / {} to {})",
            d.train.first, d.train.last, d.validation.first, d.validation.last, d.test.first, d.test.last
        )
    });
    let _ = writeln!(
        s,
        "| rows train / validation / test | {} / {} / {}{split} |",
        rows(t.rows.train),
        rows(t.rows.validation),
        rows(t.rows.test)
    );
    let p = &m.provenance;
    let _ = writeln!(s, "| training data | `{}`, {} rows, {} |", p.data_file, count(p.data_lines), p.data_fingerprint);
    let (stores, products) = (rows(stats.stores.len()), rows(stats.products.len()));
    let _ = writeln!(s, "| stores / products with statistics | {stores} / {products} |");
    let _ = writeln!(s, "| seed | {} |", p.seed);
    let _ = writeln!(s, "| code | {} |\n", p.code_version);
}

/// How a metric is printed.
type MetricText = fn(&RegressionMetrics) -> String;

fn metrics_table(s: &mut String, metrics: &RegressionMetrics, bayes: Option<&RegressionMetrics>) {
    let rows: [(&str, MetricText); 5] = [
        ("mean Poisson deviance", |m| number(m.poisson_deviance)),
        ("RMSE", |m| fixed(m.rmse, 4)),
        ("MAE", |m| fixed(m.mae, 4)),
        ("WAPE", |m| pct(m.wape)),
        ("bias (Σ predicted / Σ actual − 1)", |m| signed_pct(m.bias)),
    ];
    match bayes {
        Some(b) => {
            let _ = writeln!(s, "| metric | model | Bayes-optimal (true means) |\n|---|---|---|");
            for (name, value) in rows {
                let _ = writeln!(s, "| {name} | {} | {} |", value(metrics), value(b));
            }
        }
        None => {
            let _ = writeln!(s, "| metric | value |\n|---|---|");
            for (name, value) in rows {
                let _ = writeln!(s, "| {name} | {} |", value(metrics));
            }
        }
    }
}

fn residual_rows(s: &mut String, groups: &[ResidualGroup]) {
    for g in groups {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            g.group,
            rows(g.rows),
            fixed(g.mean_actual, 3),
            fixed(g.mean_predicted, 3),
            format::signed(g.mean_error, 3),
            signed_pct(g.relative_error)
        );
    }
}

fn markdown(input: &SalesCardInput<'_>) -> String {
    let mut s = String::new();
    header(&mut s, input.manifest, input.stats);
    let _ = writeln!(s, "## Evaluation\n\nOn {}.\n", input.evaluated_on);
    metrics_table(&mut s, input.metrics, input.bayes);
    let _ = writeln!(
        s,
        "\n![Predicted against actual]({PREDICTED_FILE})\n\n![Mean error by weekday and promotion]({RESIDUALS_FILE})\n"
    );
    let _ = writeln!(
        s,
        "| group | rows | mean actual | mean predicted | mean error (predicted − actual) | relative |\n|---|---|---|---|---|---|"
    );
    residual_rows(&mut s, &input.diagnostics.by_weekday);
    residual_rows(&mut s, &input.diagnostics.by_promotion);
    s.push('\n');
    importance::section(&mut s, input.importance);
    let _ = writeln!(
        s,
        "## Inputs\n\n\
         - `store_id`, `product_id`: seen through their training statistics in `forecast.json` \
         (shrunk base rates; the product's reference price, price elasticity, promotion lift and \
         season; weekday and holiday effects); an id without statistics is scored with the global \
         defaults and reported as a warning.\n\
         - `date` (`YYYY-MM-DD`), `price` (pounds, at least 0.01), `promotion` (0 or 1).\n\n\
         Features, in order: {}.\n",
        FEATURE_NAMES.map(|f| format!("`{f}`")).join(", ")
    );
    let _ = writeln!(
        s,
        "## Intended use and limits\n\n\
         Daily demand forecasts per store and product for replenishment and price or promotion \
         planning. The training data's calendar, prices and promotions bound what it has seen: \
         prices far from a product's reference price, new stores and new products are \
         extrapolations. When the training data is the synthetic generator's, the metrics \
         describe that world, not a real retailer."
    );
    s
}

/// `ln(1 + v)`, the charts' axis scale (counts from 0 to hundreds).
fn log1p_scale(v: f64, max: f64) -> f64 {
    v.max(0.0).ln_1p() / max.ln_1p()
}

fn predicted_svg(d: &SalesDiagnostics) -> String {
    let (w, h, pad) = (400.0, 400.0, 55.0);
    let plot = w - 2.0 * pad;
    let max = d.calibration.iter().map(|b| b.mean_predicted.max(b.mean_actual)).fold(1.0, f64::max);
    let px = |v: f64| pad + log1p_scale(v, max) * plot;
    let py = |v: f64| h - pad - log1p_scale(v, max) * plot;
    let mut s = svg::open(w, h, 12, &format!("Predicted against actual ({} equal-count bins)", d.calibration.len()));
    let _ = write!(s, r##"<rect x="{pad}" y="{pad}" width="{plot}" height="{plot}" fill="none" stroke="#999"/>"##);
    let ticks = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
    for tick in ticks.into_iter().filter(|&t| t <= max) {
        let label = fixed(tick, 0);
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"#,
            px(tick),
            h - pad + 16.0,
            pad - 6.0,
            py(tick) + 4.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">mean predicted units (log scale)</text>"#,
        w / 2.0,
        h - 14.0
    );
    let _ = write!(
        s,
        r#"<text x="16" y="{0}" text-anchor="middle" transform="rotate(-90 16 {0})">mean actual units (log scale)</text>"#,
        h / 2.0
    );
    let _ = write!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#bbb" stroke-dasharray="4 3"/>"##,
        px(0.0),
        py(0.0),
        px(max),
        py(max)
    );
    let points: Vec<String> =
        d.calibration.iter().map(|b| format!("{:.1},{:.1}", px(b.mean_predicted), py(b.mean_actual))).collect();
    let _ = write!(s, r##"<polyline points="{}" fill="none" stroke="#7570b3" stroke-width="2"/>"##, points.join(" "));
    for b in &d.calibration {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#7570b3" fill-opacity="0.7"><title>predicted {}–{}: {} rows, mean predicted {}, mean actual {}</title></circle>"##,
            px(b.mean_predicted),
            py(b.mean_actual),
            fixed(b.min_predicted, 3),
            fixed(b.max_predicted, 3),
            rows(b.rows),
            fixed(b.mean_predicted, 3),
            fixed(b.mean_actual, 3)
        );
    }
    svg::close(s)
}

fn residuals_svg(d: &SalesDiagnostics) -> String {
    let groups: Vec<&ResidualGroup> = d.by_weekday.iter().chain(&d.by_promotion).collect();
    let (w, bar, top, left) = (460.0, 24.0, 50.0, 110.0);
    let gap = if d.by_promotion.is_empty() { 0.0 } else { bar };
    let h = top + bar * groups.len() as f64 + gap + 50.0;
    let plot = w - left - 30.0;
    let largest = groups.iter().filter_map(|g| g.relative_error).map(f64::abs).fold(0.01, f64::max);
    // The longest bar leaves room for its label.
    let x = |r: f64| left + plot / 2.0 + r / largest * (plot / 2.0 - 55.0);
    let mut s = svg::open(w, h, 12, "Mean error by weekday and promotion");
    let zero = x(0.0);
    let bottom = top + bar * groups.len() as f64 + gap;
    let _ = write!(s, r##"<line x1="{zero:.1}" y1="{}" x2="{zero:.1}" y2="{bottom}" stroke="#666"/>"##, top - 6.0);
    for (k, g) in groups.iter().enumerate() {
        let y = top + bar * k as f64 + if k >= d.by_weekday.len() { gap } else { 0.0 };
        let r = g.relative_error.unwrap_or(0.0);
        let (x0, x1) = if r < 0.0 { (x(r), zero) } else { (zero, x(r)) };
        let colour = if r < 0.0 { "#d95f02" } else { "#1b9e77" };
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text><rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{} rows, mean actual {}, mean predicted {}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="{}" font-size="11">{}</text>"#,
            left - 8.0,
            y + bar * 0.65,
            escape(&g.group),
            y + 3.0,
            (x1 - x0).max(0.5),
            bar - 6.0,
            rows(g.rows),
            fixed(g.mean_actual, 3),
            fixed(g.mean_predicted, 3),
            if r < 0.0 { x0 - 4.0 } else { x1 + 4.0 },
            y + bar * 0.65,
            if r < 0.0 { "end" } else { "start" },
            signed_pct(g.relative_error)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">(Σ predicted − Σ actual) / Σ actual; right: over-forecast</text>"#,
        left + plot / 2.0,
        h - 16.0
    );
    svg::close(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::evaluation::{PREDICTION_BINS, diagnose};

    #[test]
    fn charts_are_well_formed_svg() {
        let days: Vec<i64> = (0..100).map(|i| 19_700 + i).collect();
        let actual: Vec<f64> = (0..100).map(|i| f64::from(i % 13)).collect();
        let predicted: Vec<f64> = actual.iter().map(|a| a * 0.9 + 0.5).collect();
        let promotions: Vec<bool> = (0..100).map(|i| i % 5 == 0).collect();
        let d = diagnose(&predicted, &actual, &days, &promotions);
        for svg in [predicted_svg(&d), residuals_svg(&d), residuals_svg(&SalesDiagnostics::default())] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
            assert_eq!(svg.matches("<svg").count(), 1);
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        assert_eq!(predicted_svg(&d).matches("<circle").count(), PREDICTION_BINS);
        assert_eq!(residuals_svg(&d).matches("<rect x=").count(), 9, "7 weekdays and 2 promotion states");
    }

    /// The shipped forecast's card and charts, rendered from its artifact.
    fn shipped_card() -> (crate::artifact::Artifact, Vec<(&'static str, String)>) {
        let artifact = crate::artifact::Artifact::embedded_forecast().expect("embedded forecast");
        let stats = artifact.sales().expect("a forecast").clone();
        let crate::artifact::ModelMetrics::Regression(metrics) = artifact.manifest.metrics.clone() else {
            panic!("a regression")
        };
        // The diagnostics are not in the manifest: the committed charts that draw them are
        // compared by the reproducibility test of scripts/train-default-forecast.sh.
        let diagnostics = SalesDiagnostics::default();
        let input = SalesCardInput {
            manifest: &artifact.manifest,
            stats: &stats,
            evaluated_on: "the test split".to_owned(),
            metrics: &metrics,
            bayes: None,
            diagnostics: &diagnostics,
            importance: artifact.importance.as_ref(),
        };
        let files = render(&input).into_iter().map(|(n, b)| (n, String::from_utf8(b).expect("utf-8"))).collect();
        (artifact, files)
    }

    fn committed(file: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/sales-forecast").join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn issue17_issue18_the_shipped_forecast_card_has_importance_and_clean_numbers() {
        let (artifact, files) = shipped_card();
        let card = &files[0].1;
        assert!(card.contains("![Feature importance](importance.svg)"), "{card}");
        let importance = &files.iter().find(|(n, _)| *n == super::importance::IMPORTANCE_FILE).expect("chart").1;
        let fields = &artifact.importance.as_ref().expect("importance").fields;
        let at: Vec<usize> =
            fields.iter().map(|f| importance.find(&format!(">{}</text>", f.field)).expect("field")).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "most important first: {at:?}");
        for file in ["card.md", "predicted_vs_actual.svg", "residuals.svg", "importance.svg"] {
            let text = committed(file);
            assert_eq!(crate::card::tests::float_noise(&text), Vec::<String>::new(), "{file}");
        }
        assert_eq!(crate::card::tests::unseparated(&committed("card.md")), Vec::<String>::new());
        assert!(committed("card.md").contains(&format!("| {} | ", rows(artifact.manifest.training.rows.test / 7))));
        assert!(
            committed(super::importance::IMPORTANCE_FILE) == *importance,
            "rerun scripts/train-default-forecast.sh"
        );
    }
}
