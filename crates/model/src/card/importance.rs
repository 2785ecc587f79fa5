//! The cards' feature-importance section: a horizontal bar chart of each input field's global
//! importance (mean |SHAP value| over the training rows, from the artifact's `explain.json`),
//! split by class for a classifier, and a table with the same numbers.

use std::fmt::Write as _;

use super::format::{fixed, rows};
use super::svg::{self, escape};
use crate::explain::{FieldImportance, Importance, Space};

/// File name of the importance chart.
pub const IMPORTANCE_FILE: &str = "importance.svg";

/// Colours of the outputs' bar segments, in output order (repeated past eight).
const OUTPUT_COLOURS: [&str; 8] =
    ["#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"];

/// The chart as a `(file name, content)` pair, when the artifact records importance.
pub fn chart(importance: Option<&Importance>) -> Option<(&'static str, Vec<u8>)> {
    importance.map(|i| (IMPORTANCE_FILE, svg(i).into_bytes()))
}

/// What the numbers measure, in the model's own terms.
fn unit(importance: &Importance) -> &'static str {
    match importance.space {
        Space::LogOdds => "the class scores (log-odds, which the softmax turns into probabilities)",
        Space::Probability => "the predicted class probabilities",
        Space::Value => "the predicted value",
        Space::Log => "the log of the prediction (0.1 is a factor of about 1.1)",
    }
}

/// The outputs shown: those with any importance. A binary classifier scores its first class
/// at a fixed 0, so only the second one's log-odds (against the first) are explained.
fn shown(importance: &Importance) -> Vec<usize> {
    let n = importance.outputs.len();
    let any = |c: &usize| importance.fields.iter().any(|f| f.per_output.get(*c).is_some_and(|v| *v != 0.0));
    let shown: Vec<usize> = (0..n).filter(any).collect();
    if shown.is_empty() { (0..n).collect() } else { shown }
}

/// What the numbers measure when one output of several is shown (a binary classifier): the
/// log-odds of that class against the others.
fn against(importance: &Importance, shown: &[usize]) -> Option<String> {
    let ([one], [_, _, ..]) = (shown, importance.outputs.as_slice()) else { return None };
    let others: Vec<String> =
        (0..importance.outputs.len()).filter(|c| c != one).map(|c| format!("`{}`", importance.outputs[c])).collect();
    Some(format!(
        "the log-odds of class `{}` against {} (whose score is fixed at 0)",
        importance.outputs[*one],
        others.join(", ")
    ))
}

/// The fields, most important first (the file's order, kept when already sorted).
fn ranked(importance: &Importance) -> Vec<&FieldImportance> {
    let mut fields: Vec<&FieldImportance> = importance.fields.iter().collect();
    fields.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs).then_with(|| a.field.cmp(&b.field)));
    fields
}

/// Appends the card's "Feature importance" section: the chart, what it means and a table; or,
/// for an artifact without importance, a sentence saying so.
pub fn section(s: &mut String, importance: Option<&Importance>) {
    let _ = writeln!(s, "## Feature importance\n");
    let Some(importance) = importance else {
        let _ = writeln!(
            s,
            "This artifact records no feature importance (it has no `explain.json` with importance), \
             so the card has no importance chart.\n"
        );
        return;
    };
    let shown = shown(importance);
    let per_class = shown.len() > 1;
    let _ = writeln!(s, "![Feature importance]({IMPORTANCE_FILE})\n");
    let _ = writeln!(
        s,
        "Each input field's mean absolute SHAP value over {} training rows (exact TreeSHAP): how far, \
         on average and in either direction, the field moves {} away from the model's base value{}. \
         It ranks what the model relies on; it does not say that a field causes the outcome, and \
         fields that carry the same information share the credit.\n",
        rows(importance.rows),
        against(importance, &shown).unwrap_or_else(|| unit(importance).to_owned()),
        if per_class { ", summed over the classes (each class is one segment of the bar)" } else { "" }
    );
    let outputs: &[usize] = if per_class { &shown } else { &[] };
    let head: String = outputs.iter().map(|o| format!(" {} |", importance.outputs[*o])).collect();
    let rule = "---|".repeat(outputs.len());
    let _ = writeln!(s, "| field | mean \\|SHAP\\| |{head}\n|---|---|{rule}");
    for f in ranked(importance) {
        let cells: String = if per_class {
            outputs.iter().map(|o| format!(" {} |", fixed(f.per_output.get(*o).copied().unwrap_or(0.0), 4))).collect()
        } else {
            String::new()
        };
        let _ = writeln!(s, "| `{}` | {} |{cells}", f.field, fixed(f.mean_abs, 4));
    }
    s.push('\n');
}

/// The horizontal bar chart, most important field at the top; a classifier's bars are stacked
/// by class with a legend.
pub fn svg(importance: &Importance) -> String {
    let fields = ranked(importance);
    let shown = shown(importance);
    let per_class = shown.len() > 1;
    let (w, bar, top, left, right) = (560.0, 24.0, 44.0, 150.0, 70.0);
    let legend = if per_class { 26.0 } else { 0.0 };
    let h = top + bar * fields.len().max(1) as f64 + legend + 40.0;
    let plot = w - left - right;
    let largest = fields.first().map_or(0.0, |f| f.mean_abs).max(f64::MIN_POSITIVE);
    let mut s = svg::open(w, h, 12, &format!("Feature importance (mean |SHAP| over {} rows)", rows(importance.rows)));
    let bottom = top + bar * fields.len().max(1) as f64;
    let _ = write!(s, r##"<line x1="{left}" y1="{}" x2="{left}" y2="{bottom}" stroke="#666"/>"##, top - 4.0);
    for (k, f) in fields.iter().enumerate() {
        let y = top + bar * k as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + bar * 0.65,
            escape(&f.field)
        );
        let mut x = left;
        let segments: Vec<(f64, &str)> = if per_class {
            let value = |o: usize| f.per_output.get(o).copied().unwrap_or(0.0);
            shown.iter().map(|&o| (value(o), importance.outputs[o].as_str())).collect()
        } else {
            vec![(f.mean_abs, shown.first().map_or("", |&o| importance.outputs[o].as_str()))]
        };
        for (c, (value, output)) in segments.into_iter().enumerate() {
            let width = value.max(0.0) / largest * plot;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="{}"><title>{}: {} {}</title></rect>"#,
                y + 3.0,
                bar - 6.0,
                OUTPUT_COLOURS[c % OUTPUT_COLOURS.len()],
                escape(&f.field),
                escape(output),
                fixed(value, 4)
            );
            x += width;
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
            x + 4.0,
            y + bar * 0.65,
            fixed(f.mean_abs, 3)
        );
    }
    if per_class {
        let mut x = left;
        for (c, output) in shown.iter().map(|&o| &importance.outputs[o]).enumerate() {
            let colour = OUTPUT_COLOURS[c % OUTPUT_COLOURS.len()];
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{}">{}</text>"#,
                bottom + 12.0,
                x + 16.0,
                bottom + 22.0,
                escape(output)
            );
            x += 30.0 + 8.0 * output.chars().count().min(20) as f64;
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">mean |contribution| to {}</text>"#,
        left + plot / 2.0,
        h - 14.0,
        match importance.space {
            Space::LogOdds => "the class scores (log-odds)",
            Space::Probability => "the class probabilities",
            Space::Value => "the predicted value",
            Space::Log => "the log of the prediction",
        }
    );
    svg::close(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn importance() -> Importance {
        let field = |name: &str, per_output: Vec<f64>| FieldImportance {
            field: name.to_owned(),
            mean_abs: per_output.iter().sum(),
            per_output,
        };
        Importance {
            rows: 19_923,
            space: Space::LogOdds,
            outputs: vec!["LA".into(), "MM".into(), "UM".into()],
            fields: vec![
                field("SPEND", vec![0.6, 0.1, 0.6]),
                field("<b>", vec![2.0, 0.5, 1.0]),
                field("Q", vec![0.0, 0.0, 0.0]),
            ],
        }
    }

    #[test]
    fn issue17_importance_chart_is_well_formed_ordered_and_escaped() {
        let svg = svg(&importance());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(!svg.contains("NaN") && !svg.contains("inf") && !svg.contains("<b>"), "{svg}");
        let (first, second) =
            (svg.find("&lt;b&gt;</text>").expect("first"), svg.find(">SPEND</text>").expect("second"));
        assert!(first < second && second < svg.find(">Q</text>").expect("third"), "most important first");
        assert_eq!(svg.matches("<rect x=").count(), 9 + 3, "a segment per field and class, a legend box per class");
        assert!(svg.contains("19,923 rows"));
    }

    #[test]
    fn issue17_a_binary_classifier_shows_the_log_odds_of_its_second_class_only() {
        let field =
            |name: &str, v: f64| FieldImportance { field: name.to_owned(), mean_abs: v, per_output: vec![0.0, v] };
        let binary = Importance {
            rows: 100,
            space: Space::LogOdds,
            outputs: vec!["no".into(), "yes".into()],
            fields: vec![field("f1", 0.7), field("f2", 0.2)],
        };
        let mut s = String::new();
        section(&mut s, Some(&binary));
        assert!(s.contains("| field | mean \\|SHAP\\| |\n") && s.contains("| `f1` | 0.7000 |\n"), "{s}");
        assert!(
            s.contains("moves the log-odds of class `yes` against `no` (whose score is fixed at 0) away")
                && !s.contains("segment"),
            "{s}"
        );
        let svg = svg(&binary);
        assert_eq!(svg.matches("<rect x=").count(), 2, "one bar per field, no legend: {svg}");
    }

    #[test]
    fn issue17_section_explains_or_says_there_is_none() {
        let mut s = String::new();
        section(&mut s, Some(&importance()));
        assert!(
            s.contains("![Feature importance](importance.svg)")
                && s.contains("| field | mean \\|SHAP\\| | LA | MM | UM |"),
            "{s}"
        );
        assert!(s.find("`<b>`").expect("b") < s.find("`SPEND`").expect("spend"));
        let mut none = String::new();
        section(&mut none, None);
        assert!(none.contains("no feature importance") && !none.contains("importance.svg"), "{none}");
        assert!(chart(None).is_none());
    }
}
