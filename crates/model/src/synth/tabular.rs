//! A synthetic generic table like the seed's example input (`{"features": [1, …, 20]}`): 20
//! numeric columns `f1..f20`, each uniform on [0, 25] (so the seed's vector is inside every
//! training range), 5% missing in `f3`, `f8` and `f15`, and a binary `label` drawn from a known
//! probability: a logistic function of a nonlinear score of `f1..f8` (interactions, a
//! threshold, a bump, and a different effect when `f3` is missing); `f9..f20` are noise. The
//! truth sidecar holds each row's probability of class 1, so the best possible accuracy and log
//! loss are known.
//!
//! Output is a pure function of the [`TabularConfig`]: one random stream per row.

use std::io::{self, Write};

use serde::Serialize;

use crate::progress::Progress;
use crate::rng::Rng;

/// Feature columns.
pub const N_COLUMNS: usize = 20;
/// Columns with missing values (1-based names `f3`, `f8`, `f15`), and the share missing.
const MISSING_COLUMNS: [usize; 3] = [2, 7, 14];
const MISSING_SHARE: f64 = 0.05;
const STREAM_ROWS: u64 = 21;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TabularConfig {
    /// Rows.
    pub rows: u64,
    /// Seed.
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, Serialize)]
pub struct TabularSummary {
    /// Rows written.
    pub rows: u64,
    /// Rows of class 1.
    pub positives: u64,
    /// Accuracy of the Bayes-optimal rule (predict class 1 when p > 0.5) on these rows.
    pub bayes_accuracy: f64,
    /// Mean log loss of the true probabilities on these rows.
    pub bayes_log_loss: f64,
}

/// The probability of class 1 of a row (NaN = missing).
pub fn probability(x: &[f64; N_COLUMNS]) -> f64 {
    let z = |v: f64| (v - 12.5) / 7.2;
    let (a, b, d, e) = (z(x[0]), z(x[1]), z(x[3]), z(x[4]));
    let c = if x[2].is_nan() { 1.2 } else { 0.8 * z(x[2]) };
    let bump = (-(z(x[5]) * z(x[5])) * 2.0).exp();
    let step = if x[6] > 15.0 { 0.9 } else { -0.3 };
    let h = if x[7].is_nan() { 0.0 } else { 0.5 * (z(x[7]) * 2.0).sin() };
    let score = 1.1 * a - 0.9 * b + c + 1.2 * a * d - 0.8 * e * e + 1.5 * bump + step + h - 0.2;
    1.0 / (1.0 + (-score).exp())
}

/// Writes `rows` rows (header `f1,…,f20,label`) to `data` and, when given, `p1` per row to
/// `truth`.
pub fn generate(
    config: TabularConfig,
    data: &mut dyn Write,
    mut truth: Option<&mut dyn Write>,
    progress: &dyn Progress,
) -> io::Result<TabularSummary> {
    let header: Vec<String> = (1..=N_COLUMNS).map(|i| format!("f{i}")).collect();
    writeln!(data, "{},label", header.join(","))?;
    if let Some(t) = truth.as_mut() {
        writeln!(t, "p1")?;
    }
    progress.stage("generating rows", config.rows);
    let mut summary = TabularSummary { rows: config.rows, positives: 0, bayes_accuracy: 0.0, bayes_log_loss: 0.0 };
    let mut line = String::new();
    for row in 0..config.rows {
        let mut rng = Rng::new(config.seed, STREAM_ROWS, row);
        let mut x = [0.0; N_COLUMNS];
        for (i, v) in x.iter_mut().enumerate() {
            let value = (rng.uniform() * 2500.0).round() / 100.0;
            *v = if MISSING_COLUMNS.contains(&i) && rng.chance(MISSING_SHARE) { f64::NAN } else { value };
        }
        let p = probability(&x);
        let y = rng.chance(p);
        summary.positives += u64::from(y);
        summary.bayes_accuracy += f64::from(u8::from((p > 0.5) == y));
        summary.bayes_log_loss -= if y { p.ln() } else { (1.0 - p).ln() };
        line.clear();
        for v in x {
            if !v.is_nan() {
                line.push_str(&v.to_string());
            }
            line.push(',');
        }
        line.push_str(if y { "1" } else { "0" });
        writeln!(data, "{line}")?;
        if let Some(t) = truth.as_mut() {
            writeln!(t, "{p:.6}")?;
        }
        if row % 4096 == 0 {
            progress.advance(4096.min(config.rows - row));
        }
    }
    let n = config.rows.max(1) as f64;
    summary.bayes_accuracy /= n;
    summary.bayes_log_loss /= n;
    Ok(summary)
}
