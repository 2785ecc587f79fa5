//! The short human summary `evaluate` prints on stderr: headline metrics (against the
//! Bayes-optimal ceiling when the truth sidecar of generated data is given), a per-class table
//! and a labelled confusion matrix, or a regression's errors against the optimum.

use std::fmt::Write as _;

use retail_model::card::format::{count, rows};
use retail_model::metrics::{Metrics, RegressionMetrics};

fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// A classifier's summary; `hint_truth` adds how to get the ceiling when it is missing.
pub(crate) fn classification(metrics: &Metrics, bayes: Option<&Metrics>, hint_truth: bool) -> String {
    let mut s = String::new();
    for (name, model, ceiling) in [
        ("accuracy", metrics.accuracy, bayes.map(|b| b.accuracy)),
        ("macro-F1", metrics.macro_f1, bayes.map(|b| b.macro_f1)),
    ] {
        let _ = write!(s, "{name:<9} {}", percent(model));
        if let Some(ceiling) = ceiling {
            let _ = write!(s, "  Bayes ceiling {} ({:+.2} points)", percent(ceiling), (model - ceiling) * 100.0);
        }
        s.push('\n');
    }
    if bayes.is_none() && hint_truth {
        s.push_str("(Bayes ceiling: pass --truth with the sidecar gen-data wrote for this data)\n");
    }
    let _ = write!(s, "rows {}, log loss {:.4}, ECE {:.4}", rows(metrics.rows), metrics.log_loss, metrics.ece);
    if let Some(auc) = metrics.roc_auc {
        let _ = write!(s, ", ROC AUC {auc:.4}");
    }
    s.push_str("\n\n");
    let classes: Vec<&str> = metrics.per_class.iter().map(|c| c.class.as_str()).collect();
    let width = classes.iter().map(|c| c.len()).max().unwrap_or(0).max(5);
    let _ = writeln!(s, "{:<width$}  {:>9}  {:>7}  {:>7}  {:>9}", "class", "precision", "recall", "F1", "support");
    for c in &metrics.per_class {
        let _ = writeln!(
            s,
            "{:<width$}  {:>9}  {:>7}  {:>7}  {:>9}",
            c.class,
            percent(c.precision),
            percent(c.recall),
            percent(c.f1),
            count(c.support)
        );
    }
    s.push('\n');
    s.push_str(&confusion(&classes, &metrics.confusion));
    s
}

/// `confusion[true][predicted]` with class names on both axes.
fn confusion(classes: &[&str], counts: &[Vec<u64>]) -> String {
    let cells: Vec<Vec<String>> = counts.iter().map(|row| row.iter().map(|n| count(*n)).collect()).collect();
    let width = classes.iter().map(|c| c.len()).chain(cells.iter().flatten().map(String::len)).max().unwrap_or(1);
    let label = classes.iter().map(|c| c.len()).max().unwrap_or(1);
    let mut s = String::from("confusion (rows: true class, columns: predicted)\n");
    let _ = write!(s, "{:<label$}", "");
    for class in classes {
        let _ = write!(s, "  {class:>width$}");
    }
    s.push('\n');
    for (class, row) in classes.iter().zip(&cells) {
        let _ = write!(s, "{class:<label$}");
        for cell in row {
            let _ = write!(s, "  {cell:>width$}");
        }
        s.push('\n');
    }
    s
}

/// One error measure of a regression, when defined.
type Metric = fn(&RegressionMetrics) -> Option<f64>;

/// A regression's summary: each error of the model, and of the optimum when known.
/// `hint_truth` adds how to get the optimum when it is missing.
pub(crate) fn regression(metrics: &RegressionMetrics, optimum: Option<&RegressionMetrics>, hint_truth: bool) -> String {
    let mut s = format!("rows {}\n", rows(metrics.rows));
    let header = format!("{:<17} {:>10} {:>10}", "", "model", if optimum.is_some() { "optimum" } else { "" });
    let _ = writeln!(s, "{}", header.trim_end());
    let number = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |v| format!("{v:.4}"));
    let share = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), percent);
    let rows: [(&str, Metric, bool); 6] = [
        ("Poisson deviance", |m| m.poisson_deviance, false),
        ("RMSE", |m| Some(m.rmse), false),
        ("MAE", |m| Some(m.mae), false),
        ("WAPE", |m| m.wape, true),
        ("bias", |m| m.bias, true),
        ("R²", |m| m.r2, false),
    ];
    for (name, get, is_share) in rows {
        let show = |m: &RegressionMetrics| if is_share { share(get(m)) } else { number(get(m)) };
        let best = optimum.map(show).unwrap_or_default();
        let line = format!("{name:<17} {:>10} {best:>10}", show(metrics));
        let _ = writeln!(s, "{}", line.trim_end());
    }
    if optimum.is_none() && hint_truth {
        s.push_str("(optimum: pass --truth with the sidecar gen-data wrote for this data)\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(count(0_u64), "0");
        assert_eq!(count(999_u64), "999");
        assert_eq!(count(1_000_u64), "1,000");
        assert_eq!(count(1_234_567_u64), "1,234,567");
    }

    #[test]
    fn the_confusion_matrix_is_labelled() {
        let text = confusion(&["LA", "MM"], &[vec![1200, 3], vec![4, 56]]);
        assert_eq!(
            text,
            "confusion (rows: true class, columns: predicted)\n       LA     MM\nLA  1,200      3\nMM      4     56\n"
        );
    }
}
