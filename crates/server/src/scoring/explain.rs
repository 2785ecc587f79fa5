//! Explanations of scored records (`?explain=true`, v2's `contributions` output): the model's
//! [`Explainer`] run on each record's feature row, written as `{"space", "base",
//! "contributions"}` — for a classifier `base` and `contributions` per class code (in the
//! classes' order), for a regression one base and one contributions map — with `base + Σ
//! contributions` equal to the model's margin (a classifier's raw class score, a Poisson
//! forecast's log). Names are shared per request ([`Arc`]), so a row's explanation holds only
//! its numbers.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use utoipa::ToSchema;

use retail_model::artifact::Artifact;
use retail_model::explain::{Explainer, Explanation as Raw, Space};

use super::{Cancel, ScoreError, is_regression};

/// Rows explained between two cancellation checks (TreeSHAP costs far more per row than
/// scoring does).
const CHUNK_ROWS: usize = 256;

/// A model's explainer with the names its explanations are written under.
#[derive(Debug, Clone)]
pub struct Explaining<'m> {
    explainer: &'m Explainer,
    names: Names,
}

/// Class codes (`None`: a regression) and input fields, shared by every row of a request.
#[derive(Debug, Clone, PartialEq)]
struct Names {
    classes: Option<Arc<[String]>>,
    fields: Arc<[String]>,
}

impl<'m> Explaining<'m> {
    /// The explainer of `artifact`, or [`ScoreError::Explain`] when its artifact has no covers.
    pub fn of(artifact: &'m Artifact) -> Result<Self, ScoreError> {
        let explainer = artifact.explainer.as_ref().map_err(|e| ScoreError::Explain(e.clone()))?;
        let classes =
            (!is_regression(artifact)).then(|| artifact.manifest.classes.iter().map(|c| c.code.clone()).collect());
        Ok(Self { explainer, names: Names { classes, fields: explainer.fields().into() } })
    }

    /// The input fields, in the order of each output's contributions.
    pub fn fields(&self) -> &[String] {
        &self.names.fields
    }

    /// The space contributions are in.
    pub fn space(&self) -> Space {
        self.explainer.space()
    }

    /// One feature row's explanation.
    pub fn one(&self, row: &[f64]) -> Explanation {
        self.wire(self.explainer.explain(row))
    }

    /// `raw` written under this model's names.
    pub fn wire(&self, raw: Raw) -> Explanation {
        Explanation { space: self.explainer.space(), names: self.names.clone(), raw }
    }

    /// Explanations of feature rows (row-major), in chunks with a cancellation check before each.
    pub fn rows(&self, rows: &[f64], n_features: usize, cancel: &Cancel) -> Result<Vec<Raw>, ScoreError> {
        let mut out = Vec::with_capacity(rows.len() / n_features.max(1));
        for chunk in rows.chunks(CHUNK_ROWS * n_features.max(1)) {
            cancel.check()?;
            out.extend(self.explainer.explain_batch(chunk));
        }
        Ok(out)
    }
}

/// Explanations of many rows as v2 tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct ContributionTensors {
    /// Contributions, `[rows, outputs, fields]` row-major.
    pub contributions: Vec<f64>,
    /// Each row's base per output, `[rows, outputs]` (the same for every row).
    pub base: Vec<f64>,
    /// Outputs: a classifier's classes, or a regression's one.
    pub outputs: usize,
    /// The input fields, in the order of the last dimension.
    pub fields: Arc<[String]>,
    /// The space contributions are in.
    pub space: Space,
}

impl Explaining<'_> {
    /// Explanations of feature rows (row-major) as v2's `contributions` and `base` tensors.
    pub fn tensors(&self, rows: &[f64], n_features: usize, cancel: &Cancel) -> Result<ContributionTensors, ScoreError> {
        let explained = self.rows(rows, n_features, cancel)?;
        let outputs = explained.first().map_or(0, |e| e.base.len());
        let mut contributions = Vec::with_capacity(explained.len() * outputs * self.names.fields.len());
        let mut base = Vec::with_capacity(explained.len() * outputs);
        for e in &explained {
            contributions.extend_from_slice(&e.contributions);
            base.extend_from_slice(&e.base);
        }
        Ok(ContributionTensors { contributions, base, outputs, fields: self.names.fields.clone(), space: self.space() })
    }
}

/// One record's explanation, as the answer's `explanation`.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    space: Space,
    names: Names,
    raw: Raw,
}

impl Explanation {
    /// The model-crate explanation (base and contributions, output-major).
    pub fn raw(&self) -> &Raw {
        &self.raw
    }
}

impl Serialize for Explanation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("space", self.space.as_str())?;
        match &self.names.classes {
            Some(classes) => {
                map.serialize_entry("base", &Named { names: classes, values: &self.raw.base })?;
                map.serialize_entry(
                    "contributions",
                    &PerClass { classes, fields: &self.names.fields, raw: &self.raw },
                )?;
            }
            None => {
                map.serialize_entry("base", &self.raw.base.first().copied().unwrap_or_default())?;
                let values = self.raw.of_output(0);
                map.serialize_entry("contributions", &Named { names: &self.names.fields, values })?;
            }
        }
        map.end()
    }
}

/// Names → values, as a JSON object in the names' order.
struct Named<'a> {
    names: &'a [String],
    values: &'a [f64],
}

impl Serialize for Named<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.names.len()))?;
        for (name, value) in self.names.iter().zip(self.values) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Class code → (field → contribution).
struct PerClass<'a> {
    classes: &'a [String],
    fields: &'a [String],
    raw: &'a Raw,
}

impl Serialize for PerClass<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        // One entry per output the explanation has (a model has one output per class).
        for (c, class) in self.classes.iter().enumerate().take(self.raw.base.len()) {
            map.serialize_entry(class, &Named { names: self.fields, values: self.raw.of_output(c) })?;
        }
        map.end()
    }
}

/// A prediction explained: its margin (a classifier's raw class scores, a regression's value in
/// its link space) split into a base value and one contribution per input field (exact
/// path-dependent TreeSHAP), base + Σ contributions = margin.
#[derive(Debug, ToSchema)]
#[schema(as = Explanation, example = json!({"space": "log_odds",
    "base": {"LA": -0.41, "MM": 0.37, "UM": 0.02},
    "contributions": {"LA": {"SPEND": -2.1, "QUANTITY": 0.2}, "MM": {"SPEND": -0.6, "QUANTITY": 0.1}, "UM": {"SPEND": 2.9, "QUANTITY": -0.3}}}))]
#[allow(dead_code)]
pub struct ExplanationSchema {
    /// The space of base and contributions: `log_odds` (a softmax classifier's raw class
    /// scores), `probability` (a classifier whose raw scores are probabilities), `value` (a
    /// squared-error regression) or `log` (a Poisson forecast: the log of the prediction).
    #[schema(pattern = "^(log_odds|probability|value|log)$")]
    space: String,
    /// The expected margin over the training rows: per class code (a classifier), or one
    /// number (a regression).
    base: ExplanationBase,
    /// Each input field's contribution: per class code, field → contribution (a classifier), or
    /// field → contribution (a regression). base + Σ contributions is the margin.
    contributions: ExplanationContributions,
}

/// A classifier's base per class, or a regression's one base.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ExplanationBase {
    /// A regression's.
    Value(f64),
    /// A classifier's, per class code.
    PerClass(BTreeMap<String, f64>),
}

/// A classifier's contributions per class, or a regression's.
#[derive(Debug, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ExplanationContributions {
    /// A classifier's: class code → field → contribution.
    PerClass(BTreeMap<String, BTreeMap<String, f64>>),
    /// A regression's: field → contribution.
    Value(BTreeMap<String, f64>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use retail_model::artifact::ModelKind;

    #[test]
    fn base_plus_contributions_is_the_margin_for_a_classifier_and_a_forecast() {
        for kind in [ModelKind::BasketClassifier, ModelKind::SalesForecast] {
            let artifact = Artifact::embedded(kind).expect("model");
            let explaining = Explaining::of(&artifact).expect("covers");
            let nf = artifact.engine.n_features();
            let row: Vec<f64> = (0..nf).map(|f| f as f64).collect();
            let json = serde_json::to_value(explaining.one(&row)).expect("json");
            let mut margin = vec![0.0; artifact.engine.n_classes()];
            artifact.engine.raw_scores(&row, &mut margin);
            let sum = |base: &serde_json::Value, contributions: &serde_json::Value| {
                base.as_f64().expect("base")
                    + contributions.as_object().expect("map").values().map(|v| v.as_f64().expect("n")).sum::<f64>()
            };
            if kind == ModelKind::SalesForecast {
                assert_eq!(json["space"], "log");
                assert!((sum(&json["base"], &json["contributions"]) - margin[0]).abs() < 1e-9);
                continue;
            }
            assert_eq!(json["space"], "log_odds");
            for (c, class) in artifact.manifest.classes.iter().enumerate() {
                let total = sum(&json["base"][&class.code], &json["contributions"][&class.code]);
                assert!((total - margin[c]).abs() < 1e-9, "{}: {total} vs {}", class.code, margin[c]);
            }
        }
    }

    #[test]
    fn an_artifact_without_covers_cannot_explain() {
        let mut artifact = Artifact::embedded_default().expect("model");
        let reason = "no explain.json".to_owned();
        artifact.explainer = Err(retail_model::explain::ExplainError::NoCovers { reason });
        assert!(matches!(Explaining::of(&artifact), Err(ScoreError::Explain(_))));
    }
}
