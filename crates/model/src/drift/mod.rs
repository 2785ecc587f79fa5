//! Reference distributions for drift monitoring ([`REFERENCE_FILE`]): per feature of the
//! engine's row, the share of training rows in a few fixed bins — numeric features binned at
//! edges taken from the model's own split thresholds (near the deciles of the training values),
//! categorical features by code — plus a missing bin; and the reference mix of predicted classes
//! (a regression: a histogram of predicted values). A server counts the rows it scores into the
//! same bins ([`Reference::bin`]) and compares the two with the population stability index, the
//! Jensen–Shannon distance and, for categorical features, the largest share difference (L∞).
//!
//! Old artifacts have no reference; drift is then unavailable, nothing else changes.

mod rules;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use rules::{MIN_ROWS_PER_CODE, Rule};

use crate::engine::{EnsembleSpec, SplitTest};

/// Name of the reference distributions in an artifact.
pub const REFERENCE_FILE: &str = "reference.json";
/// Most bin edges of a numeric feature (so at most this + 2 bins with the missing one).
pub const MAX_EDGES: usize = 9;

/// Feature columns a reference copies out of the rows per pass over them.
const COLUMNS_PER_PASS: usize = 8;
/// Most codes a categorical feature lists (the rest share the last bin).
pub const MAX_CODES: usize = 64;
/// Share given to an empty bin when comparing distributions, so PSI stays finite.
const EPSILON: f64 = 1e-4;

/// What a feature of the engine's row is, for its reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A category code: binned by code.
    Categorical,
    /// A number the caller sends (e.g. `SPEND`, a tabular column): binned, and its training range
    /// recorded so a value far outside it is warned about.
    Input,
    /// A number computed from the inputs (e.g. `UNIT_PRICE`, a calendar feature): binned only;
    /// its range says nothing a caller could act on.
    Derived,
}

/// Reference distributions of an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Rows the reference counts.
    pub rows: u64,
    /// One per engine feature, in feature order.
    pub features: Vec<FeatureReference>,
    /// The predictions' reference.
    pub prediction: Histogram,
    /// Categorical features the training rows fix by intervals of a numeric input ([`Rule`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// One feature's bins and training counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureReference {
    /// Feature name.
    pub name: String,
    /// Its bins and counts.
    #[serde(flatten)]
    pub histogram: Histogram,
    /// Smallest and largest training value of a numeric feature (out-of-range warnings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// Bins and their reference counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Histogram {
    /// Bin `i` holds values `<= edges[i]` above the previous edge; one bin above the last edge;
    /// then a bin for missing values: `edges.len() + 2` counts.
    Numeric {
        /// Increasing edges.
        edges: Vec<f64>,
        /// Counts per bin.
        counts: Vec<u64>,
    },
    /// Bin `i` holds code `codes[i]`; the last bin every other code (unseen, rare, missing):
    /// `codes.len() + 1` counts.
    Categorical {
        /// Codes.
        codes: Vec<u32>,
        /// Counts per bin.
        counts: Vec<u64>,
    },
}

impl Histogram {
    /// Number of bins.
    pub fn n_bins(&self) -> usize {
        match self {
            Self::Numeric { edges, .. } => edges.len() + 2,
            Self::Categorical { codes, .. } => codes.len() + 1,
        }
    }

    /// The bin of a value.
    pub fn bin(&self, x: f64) -> usize {
        match self {
            Self::Numeric { edges, .. } if x.is_nan() => edges.len() + 1,
            Self::Numeric { edges, .. } => edges.partition_point(|e| *e < x),
            Self::Categorical { codes, .. } => {
                let code = if x >= 0.0 && x.fract() == 0.0 && x < f64::from(u32::MAX) { x as u32 } else { u32::MAX };
                codes.iter().position(|&c| c == code).unwrap_or(codes.len())
            }
        }
    }

    /// The reference counts.
    pub fn counts(&self) -> &[u64] {
        match self {
            Self::Numeric { counts, .. } | Self::Categorical { counts, .. } => counts,
        }
    }

    /// Whether the feature is categorical (L∞ applies).
    pub fn is_categorical(&self) -> bool {
        matches!(self, Self::Categorical { .. })
    }

    fn with_counts(&self, values: impl Iterator<Item = f64>) -> Self {
        let mut counts = vec![0u64; self.n_bins()];
        for x in values {
            counts[self.bin(x)] += 1;
        }
        match self {
            Self::Numeric { edges, .. } => Self::Numeric { edges: edges.clone(), counts },
            Self::Categorical { codes, .. } => Self::Categorical { codes: codes.clone(), counts },
        }
    }
}

/// Why a reference cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ReferenceError(pub String);

impl Reference {
    /// Parses and checks a [`REFERENCE_FILE`] for an engine of `n_features` features.
    pub fn from_json(bytes: &[u8], n_features: usize) -> Result<Self, ReferenceError> {
        let reference: Self = serde_json::from_slice(bytes).map_err(|e| ReferenceError(e.to_string()))?;
        if reference.features.len() != n_features {
            return Err(ReferenceError(format!("{} features, the model has {n_features}", reference.features.len())));
        }
        for (name, h) in reference
            .features
            .iter()
            .map(|f| (f.name.as_str(), &f.histogram))
            .chain([("prediction", &reference.prediction)])
        {
            let sorted = match h {
                Histogram::Numeric { edges, .. } => {
                    edges.len() <= MAX_EDGES
                        && edges.windows(2).all(|w| w[0] < w[1])
                        && edges.iter().all(|e| e.is_finite())
                }
                Histogram::Categorical { codes, .. } => codes.len() <= MAX_CODES,
            };
            if !sorted || h.counts().len() != h.n_bins() {
                return Err(ReferenceError(format!("{name}: bins are not valid")));
            }
        }
        for rule in &reference.rules {
            let valid = rule.category < n_features
                && rule.number < n_features
                && rule.codes.len() == rule.bounds.len() + 1
                && rule.bounds.windows(2).all(|w| w[0] < w[1])
                && rule.bounds.iter().all(|b| b.is_finite())
                && (rule.labels.is_empty() || rule.labels.len() == rule.codes.len());
            if !valid {
                return Err(ReferenceError(format!(
                    "rule of features {} and {} is not valid",
                    rule.category, rule.number
                )));
            }
        }
        Ok(reference)
    }

    /// The reference of feature rows (`rows` row-major, one name and kind per feature) and
    /// their predictions (`outputs` per row: class probabilities, or one value), with numeric
    /// edges from the model's split thresholds.
    pub fn fit(names: &[String], roles: &[Role], spec: &EnsembleSpec, rows: &[f64], predictions: &[f64]) -> Self {
        let nf = names.len();
        let n = rows.len() / nf.max(1);
        // Columns are copied out a few at a time: one pass over the rows reads each group's
        // values from the same cache lines.
        let all: Vec<usize> = (0..nf).collect();
        let features = all
            .par_chunks(COLUMNS_PER_PASS)
            .flat_map_iter(|group| {
                let mut columns: Vec<Vec<f64>> = group.iter().map(|_| Vec::with_capacity(n)).collect();
                for row in rows.chunks_exact(nf) {
                    for (column, &f) in columns.iter_mut().zip(group) {
                        column.push(row[f]);
                    }
                }
                let feature = |(&f, values): (&usize, Vec<f64>)| {
                    FeatureReference::of_column(names[f].clone(), roles[f], &thresholds(spec, f), values)
                };
                group.iter().zip(columns).map(feature).collect::<Vec<_>>()
            })
            .collect();
        let k = predictions.len() / n.max(1);
        let predicted: Vec<f64> = if k > 1 {
            predictions.chunks(k).map(|p| crate::metrics::argmax(p) as f64).collect()
        } else {
            predictions.to_vec()
        };
        let prediction = if k > 1 {
            Histogram::Categorical { codes: (0..k as u32).collect(), counts: Vec::new() }
        } else {
            numeric_bins(&[], predicted.clone())
        };
        let rules = rules::learn(roles, rows);
        Self { rows: n as u64, features, prediction: prediction.with_counts(predicted.into_iter()), rules }
    }

    /// Names the rules' codes with `label(feature, code)` (the trainer's vocabularies).
    pub fn label_rules(&mut self, label: impl Fn(usize, u32) -> Option<String>) {
        for rule in &mut self.rules {
            let labels: Option<Vec<String>> = rule.codes.iter().map(|&code| label(rule.category, code)).collect();
            rule.labels = labels.unwrap_or_default();
        }
    }

    /// The rules `row` contradicts: `(rule, code index it has, code index its number calls for)`.
    pub fn contradictions<'r>(&'r self, row: &'r [f64]) -> impl Iterator<Item = (&'r Rule, usize, usize)> + 'r {
        self.rules.iter().filter_map(move |rule| rule.check(row).map(|(have, want)| (rule, have, want)))
    }
}

impl FeatureReference {
    /// The reference of one feature's `values`, with numeric edges from the model's split
    /// `thresholds` (increasing) on that feature.
    fn of_column(name: String, role: Role, thresholds: &[f64], values: Vec<f64>) -> Self {
        let range = (role == Role::Input).then(|| {
            values
                .iter()
                .filter(|x| !x.is_nan())
                .fold([f64::INFINITY, f64::NEG_INFINITY], |[lo, hi], &x| [lo.min(x), hi.max(x)])
        });
        let bins = if role == Role::Categorical {
            codes_bins(values.iter().copied())
        } else {
            numeric_bins(thresholds, values.clone())
        };
        Self { name, histogram: bins.with_counts(values.into_iter()), range: range.filter(|[lo, hi]| lo <= hi) }
    }
}

impl Reference {
    /// [`Reference::fit`] with the predictions `engine` (compiled from `spec`) makes for `rows`.
    pub fn of_rows(
        names: &[String],
        roles: &[Role],
        spec: &EnsembleSpec,
        engine: &crate::engine::Engine,
        rows: &[f64],
    ) -> Self {
        let n = rows.len() / engine.n_features().max(1);
        let mut predictions = vec![0.0; n * engine.n_classes()];
        engine.predict_batch_parallel(rows, &mut predictions);
        Self::fit(names, roles, spec, rows, &predictions)
    }

    /// The reference as the bytes an artifact stores.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Distinct thresholds of feature `f` in the ensemble, increasing.
fn thresholds(spec: &EnsembleSpec, f: usize) -> Vec<f64> {
    let mut t: Vec<f64> = spec
        .trees
        .iter()
        .flat_map(|tree| &tree.nodes)
        .filter(|n| n.feature == f)
        .filter_map(|n| match n.test {
            SplitTest::Threshold(t) if t.is_finite() => Some(t),
            _ => None,
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t.dedup();
    t
}

/// Edges near the deciles of `values`: the model's threshold nearest each decile (the decile
/// itself when the model never splits the feature), deduplicated.
fn numeric_bins(thresholds: &[f64], mut values: Vec<f64>) -> Histogram {
    values.retain(|x| !x.is_nan());
    let mut edges = Vec::new();
    if !values.is_empty() {
        for decile in deciles(&mut values) {
            let edge = thresholds
                .iter()
                .copied()
                .min_by(|a, b| (a - decile).abs().total_cmp(&(b - decile).abs()))
                .unwrap_or(decile);
            if edges.last().is_none_or(|last| edge > *last) {
                edges.push(edge);
            }
        }
    }
    Histogram::Numeric { edges, counts: Vec::new() }
}

/// The values at the ranks of the [`MAX_EDGES`] deciles, as a sort would place them
/// (`f64::total_cmp`), found by selecting each rank above the previous one instead of sorting.
fn deciles(values: &mut [f64]) -> Vec<f64> {
    let mut found = Vec::with_capacity(MAX_EDGES);
    let mut from = 0;
    for q in 1..=MAX_EDGES {
        let rank = (values.len() * q / (MAX_EDGES + 1)).min(values.len() - 1);
        if rank >= from {
            values[from..].select_nth_unstable_by(rank - from, f64::total_cmp);
            from = rank + 1;
        }
        found.push(values[rank]);
    }
    found
}

/// The most frequent codes (at most [`MAX_CODES`]), in code order.
fn codes_bins(values: impl Iterator<Item = f64>) -> Histogram {
    let mut counts: std::collections::BTreeMap<u32, u64> = std::collections::BTreeMap::new();
    for x in values {
        if x >= 0.0 && x.fract() == 0.0 && x < f64::from(u32::MAX) {
            *counts.entry(x as u32).or_default() += 1;
        }
    }
    let mut codes: Vec<(u32, u64)> = counts.into_iter().collect();
    codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    codes.truncate(MAX_CODES);
    let mut codes: Vec<u32> = codes.into_iter().map(|(c, _)| c).collect();
    codes.sort_unstable();
    Histogram::Categorical { codes, counts: Vec::new() }
}

/// Drift statistics of observed counts against reference counts (same bins).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Drift {
    /// Population stability index `Σ (o − r)·ln(o / r)` over bin shares (empty bins get a share
    /// of 1e-4).
    pub psi: f64,
    /// Jensen–Shannon distance (base 2, in [0, 1]).
    pub js: f64,
    /// Largest absolute difference of bin shares.
    pub linf: f64,
}

/// Compares observed counts with reference counts.
pub fn compare(reference: &[u64], observed: &[u64]) -> Drift {
    let shares = |counts: &[u64]| {
        let total = counts.iter().sum::<u64>().max(1) as f64;
        counts.iter().map(|&c| c as f64 / total).collect::<Vec<f64>>()
    };
    let (r, o) = (shares(reference), shares(observed));
    let (mut psi, mut js, mut linf) = (0.0, 0.0, 0.0f64);
    for (&r, &o) in r.iter().zip(&o) {
        let (re, oe) = (r.max(EPSILON), o.max(EPSILON));
        psi += (oe - re) * (oe / re).ln();
        let m = (r + o) / 2.0;
        if r > 0.0 {
            js += 0.5 * r * (r / m).log2();
        }
        if o > 0.0 {
            js += 0.5 * o * (o / m).log2();
        }
        linf = linf.max((r - o).abs());
    }
    Drift { psi, js: js.max(0.0).sqrt(), linf }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{NodeSpec, Output, TreeSpec};

    fn spec() -> EnsembleSpec {
        let node =
            |t: f64| NodeSpec { feature: 0, test: SplitTest::Threshold(t), left: -1, right: !1, missing_left: true };
        EnsembleSpec {
            format: crate::engine::ENSEMBLE_FORMAT.to_owned(),
            n_features: 2,
            classes: vec!["a".into(), "b".into()],
            init_scores: vec![0.0, 0.0],
            trees: (0..100)
                .map(|i| TreeSpec { class: 0, nodes: vec![node(f64::from(i) + 0.5)], leaves: vec![0.0, 1.0] })
                .collect(),
            output: Output::Softmax,
        }
    }

    #[test]
    fn a_reference_bins_at_model_thresholds_near_deciles_and_round_trips() {
        let rows: Vec<f64> = (0..1000).flat_map(|i| [f64::from(i % 100), f64::from(i % 3)]).collect();
        let predictions: Vec<f64> = (0..1000).flat_map(|i| if i % 4 == 0 { [0.9, 0.1] } else { [0.2, 0.8] }).collect();
        let names = vec!["x".to_owned(), "c".to_owned()];
        let r = Reference::fit(&names, &[Role::Input, Role::Categorical], &spec(), &rows, &predictions);
        let Histogram::Numeric { edges, counts } = &r.features[0].histogram else { panic!("numeric") };
        assert_eq!(edges, &[9.5, 19.5, 29.5, 39.5, 49.5, 59.5, 69.5, 79.5, 89.5]);
        assert_eq!(counts.iter().sum::<u64>(), 1000);
        assert_eq!(counts[10], 0, "no missing values");
        assert_eq!(r.features[0].range, Some([0.0, 99.0]));
        assert!(
            matches!(&r.features[1].histogram, Histogram::Categorical { codes, counts } if codes == &[0, 1, 2] && counts == &[334, 333, 333, 0])
        );
        assert!(matches!(&r.prediction, Histogram::Categorical { counts, .. } if counts == &[250, 750, 0]));
        let json = serde_json::to_vec(&r).expect("json");
        assert_eq!(Reference::from_json(&json, 2).expect("parse"), r);
        assert!(Reference::from_json(&json, 3).is_err());
        assert_eq!(r.features[0].histogram.bin(f64::NAN), 10);
        assert_eq!(r.features[1].histogram.bin(7.0), 3);
    }

    #[test]
    fn deciles_are_the_ranks_a_sort_gives() {
        let mut rng = crate::rng::Rng::new(5, 0, 0);
        for n in (1..40).chain([1000, 10_001]) {
            // Few distinct values (ties), both zeros, and negatives.
            let values: Vec<f64> = (0..n).map(|_| [(rng.below(7) as f64 - 3.0) / 2.0, -0.0][rng.below(2)]).collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let expected: Vec<u64> =
                (1..=MAX_EDGES).map(|q| sorted[(n * q / (MAX_EDGES + 1)).min(n - 1)].to_bits()).collect();
            let found: Vec<u64> = deciles(&mut values.clone()).iter().map(|x| x.to_bits()).collect();
            assert_eq!(found, expected, "{n} values");
        }
    }

    #[test]
    fn statistics_match_hand_values() {
        let same = compare(&[10, 20, 30], &[1, 2, 3]);
        assert!(same.psi.abs() < 1e-12 && same.js.abs() < 1e-7 && same.linf.abs() < 1e-12, "{same:?}");
        let d = compare(&[50, 50], &[90, 10]);
        let psi = (0.9 - 0.5) * (0.9f64 / 0.5).ln() + (0.1 - 0.5) * (0.1f64 / 0.5).ln();
        assert!((d.psi - psi).abs() < 1e-12, "{d:?}");
        assert!((d.linf - 0.4).abs() < 1e-12);
        let disjoint = compare(&[10, 0], &[0, 10]);
        assert!((disjoint.js - 1.0).abs() < 1e-12, "{disjoint:?}");
    }
}

#[cfg(test)]
mod rule_file_tests {
    use super::*;

    /// The shipped basket model's reference, with its one rule edited by `edit`.
    fn edited(edit: impl Fn(&mut serde_json::Value)) -> Result<Reference, ReferenceError> {
        let bytes = include_bytes!("../../../../models/default/reference.json");
        let mut json: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        edit(&mut json["rules"][0]);
        Reference::from_json(&serde_json::to_vec(&json).expect("bytes"), crate::features::N_FEATURES)
    }

    #[test]
    fn hostile_rules_are_refused_when_the_reference_loads() {
        assert_eq!(edited(|_| ()).expect("the shipped reference").rules.len(), 1);
        let hostile: [fn(&mut serde_json::Value); 5] = [
            |r| r["category"] = 9.into(),
            |r| r["number"] = 1_000_000.into(),
            |r| r["bounds"] = serde_json::json!([15.0]),
            |r| r["bounds"] = serde_json::json!([130.0, 15.0]),
            |r| r["labels"] = serde_json::json!(["S"]),
        ];
        for edit in hostile {
            let error = edited(edit).expect_err("refused");
            assert!(error.0.contains("rule of features"), "{error}");
        }
    }
}
