//! The classification card's charts: the confusion matrix (row shares and counts) and the
//! reliability diagram (mean confidence against share correct per confidence bin, with the
//! rows in each bin).

use std::fmt::Write as _;

use super::format::{count, fixed, pct, short};
use super::svg::{self, escape};
use crate::metrics::Metrics;

/// Colour of the calibration curve.
const CURVE: &str = "#7570b3";

/// The confusion matrix: one cell per (true, predicted) class with its share of the true
/// class's rows and its count.
pub fn confusion_svg(metrics: &Metrics) -> String {
    let k = metrics.confusion.len();
    let cell = 90.0;
    let (left, top) = (110.0, 60.0);
    let size = left + cell * k as f64 + 20.0;
    let height = top + cell * k as f64 + 50.0;
    let mut s = svg::open(size, height, 13, "Confusion matrix (row share)");
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">predicted</text>"#,
        left + cell * k as f64 / 2.0,
        top - 22.0
    );
    let middle = top + cell * k as f64 / 2.0;
    let _ =
        write!(s, r#"<text x="18" y="{middle}" text-anchor="middle" transform="rotate(-90 18 {middle})">true</text>"#);
    for (t, row) in metrics.confusion.iter().enumerate() {
        let total: u64 = row.iter().sum();
        let name = escape(metrics.per_class.get(t).map_or("", |c| c.class.as_str()));
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text><text x="{}" y="{}" text-anchor="middle">{name}</text>"#,
            left - 10.0,
            top + cell * (t as f64 + 0.5) + 5.0,
            left + cell * (t as f64 + 0.5),
            top - 6.0
        );
        for (p, &n) in row.iter().enumerate() {
            let share = if total > 0 { n as f64 / total as f64 } else { 0.0 };
            let (x, y) = (left + cell * p as f64, top + cell * t as f64);
            let text = if share > 0.55 { "white" } else { "black" };
            let _ = write!(
                s,
                r##"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="#08519c" fill-opacity="{:.3}" stroke="#999"/><text x="{}" y="{}" text-anchor="middle" fill="{text}">{}</text><text x="{}" y="{}" text-anchor="middle" fill="{text}" font-size="11">{}</text>"##,
                0.05 + 0.9 * share,
                x + cell / 2.0,
                y + cell / 2.0,
                pct(share),
                x + cell / 2.0,
                y + cell / 2.0 + 16.0,
                count(n),
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="12">accuracy {}, macro-F1 {}</text>"#,
        size / 2.0,
        height - 15.0,
        pct(metrics.accuracy),
        pct(metrics.macro_f1)
    );
    svg::close(s)
}

/// The reliability diagram: per confidence bin, the mean top-class confidence against the share
/// predicted correctly (a point sized by its rows), over a histogram of the rows in each bin
/// with their count.
pub fn calibration_svg(metrics: &Metrics) -> String {
    let (w, h, pad) = (380.0, 380.0, 50.0);
    let plot = w - 2.0 * pad;
    let px = |x: f64| pad + x * plot;
    let py = |y: f64| h - pad - y * plot;
    let mut s = svg::open(w, h, 12, &format!("Calibration (ECE {})", fixed(metrics.ece, 4)));
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
        r#"<text x="14" y="{0}" text-anchor="middle" transform="rotate(-90 14 {0})">share correct</text>"#,
        h / 2.0
    );
    histogram(&mut s, metrics, px, py(0.0));
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="10" fill="#555">grey bars: rows per bin</text>"##,
        pad + 6.0,
        pad + 14.0
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
    let _ = write!(s, r#"<polyline points="{}" fill="none" stroke="{CURVE}" stroke-width="2"/>"#, points.join(" "));
    for b in &metrics.calibration {
        let r = 3.0 + 12.0 * (b.count as f64 / total as f64).sqrt();
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="{CURVE}" fill-opacity="0.6"><title>{}–{}: {} rows, confidence {}, correct {}</title></circle>"#,
            px(b.confidence),
            py(b.accuracy),
            fixed(b.lower, 2),
            fixed(b.upper, 2),
            count(b.count),
            fixed(b.confidence, 3),
            fixed(b.accuracy, 3)
        );
    }
    svg::close(s)
}

/// Grey bars along the bottom of the plot, one per confidence bin, as tall as its share of the
/// largest bin (at most 60 pixels), each labelled with its row count.
fn histogram(s: &mut String, metrics: &Metrics, px: impl Fn(f64) -> f64, base: f64) {
    let largest = metrics.calibration.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    for b in &metrics.calibration {
        let height = 60.0 * b.count as f64 / largest as f64;
        let (x0, x1) = (px(b.lower), px(b.upper));
        let (x, y) = ((x0 + x1) / 2.0 + 3.0, base - height - 3.0);
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{height:.1}" fill="#ddd" stroke="#fff"><title>{}–{}: {} rows</title></rect><text x="{x:.1}" y="{y:.1}" font-size="9" fill="#555" transform="rotate(-90 {x:.1} {y:.1})">{}</text>"##,
            x0,
            base - height,
            (x1 - x0).max(0.5),
            short(b.lower, 2),
            short(b.upper, 2),
            count(b.count),
            count(b.count)
        );
    }
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

    #[test]
    fn issue18_calibration_chart_labels_each_bin_with_its_rows() {
        let classes = vec!["A".to_owned(), "B".to_owned()];
        let mut probabilities = Vec::new();
        let mut labels = Vec::new();
        for i in 0..12_345 {
            let p = 0.5 + 0.45 * f64::from(i % 10) / 10.0;
            probabilities.extend([p, 1.0 - p]);
            labels.push(usize::from(i % 3 == 0));
        }
        let m = evaluate(&classes, &probabilities, &labels);
        let svg = calibration_svg(&m);
        let labelled: u64 = m
            .calibration
            .iter()
            .inspect(|b| {
                assert!(svg.contains(&format!(">{}</text>", count(b.count))), "bin count {} in {svg}", b.count)
            })
            .map(|b| b.count)
            .sum();
        assert_eq!(labelled, 12_345);
        assert!(svg.contains("1,235") || svg.contains("1,234"), "thousands separators: {svg}");
    }
}
