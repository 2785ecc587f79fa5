//! Answers: a prediction per basket, with a warning per category value scored as unseen. A
//! warning quotes at most [`PREFIX_CHARS`] characters of the value, escaped, so an answer never
//! grows with the values a caller sends.

use std::fmt::Write;

use serde::ser::SerializeMap;

use retail_model::artifact::{Artifact, ClassInfo};
use retail_model::features::Unseen;
use retail_model::metrics::argmax;

use super::Explanation;
use crate::schema::{BasketSummary, PredictionResponse};

/// Most characters of an unknown value a warning quotes.
pub const PREFIX_CHARS: usize = 32;

/// Shortens unseen values to what a warning can show (one character more than it quotes, so it
/// still knows to add `…`), so a batch keeps no copy of long values.
pub(crate) fn clip(unseen: &mut [Unseen]) {
    for u in unseen {
        if let Some((end, _)) = u.value.char_indices().nth(PREFIX_CHARS + 1) {
            u.value = u.value[..end].to_owned();
        }
    }
}

/// The warning for a category value scored as unseen: `FIELD: unknown value "…"; scored as
/// unseen`, the value escaped and cut after [`PREFIX_CHARS`] characters (then `…`).
pub fn warning(unseen: &Unseen) -> String {
    let Unseen { field, value } = unseen;
    if value.is_empty() {
        return format!("{field}: not provided; scored as unseen");
    }
    format!("{field}: unknown value {}; scored as unseen", quote(value))
}

/// `value` quoted and escaped (as Rust's `{:?}` does), cut after [`PREFIX_CHARS`] characters
/// (then `…`).
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(PREFIX_CHARS + 8);
    let _ = match value.char_indices().nth(PREFIX_CHARS) {
        Some((end, _)) => write!(out, "{:?}…", &value[..end]),
        None => write!(out, "{value:?}"),
    };
    out
}

/// A feature value outside its training range (widened by [`crate::drift::RANGE_MARGIN`] of
/// its span): `SPEND: 9000000 is outside the training range [0.29, 428]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfRange {
    /// The feature.
    pub field: String,
    /// Its value.
    pub value: f64,
    /// The smallest and largest training values.
    pub range: [f64; 2],
}

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let [lo, hi] = self.range;
        write!(f, "{}: {} is outside the training range [{}, {}]", self.field, short(self.value), short(lo), short(hi))
    }
}

/// A number with at most 6 significant digits, without trailing zeros.
fn short(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let digits = (5 - x.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{x:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

/// The values of `features` outside their reference range (numeric features with one).
pub(crate) fn out_of_range<'r>(
    reference: &'r retail_model::drift::Reference,
    features: &'r [f64],
) -> impl Iterator<Item = OutOfRange> + 'r {
    reference.features.iter().zip(features).filter_map(|(f, &value)| {
        let range = f.range?;
        crate::drift::out_of_range(range, value).then(|| OutOfRange { field: f.name.clone(), value, range })
    })
}

/// A record breaking a rule its model's training rows obey ([`retail_model::drift::Rule`]):
/// `BASKET_SIZE "S" contradicts SPEND 300: in the training data, SPEND 129.995 or more always
/// came with BASKET_SIZE "L"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contradiction {
    /// The categorical feature, and the category the record has.
    pub category: (String, String),
    /// The numeric feature and the record's value.
    pub number: (String, f64),
    /// The interval the value is in, and the category it calls for.
    pub expected: (String, String),
}

impl std::fmt::Display for Contradiction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((category, has), (number, value), (interval, wants)) = (&self.category, &self.number, &self.expected);
        write!(
            f,
            "{category} {has:?} contradicts {number} {}: in the training data, {number} {interval} always came with {category} {wants:?}",
            short(*value)
        )
    }
}

/// The rules of `reference` that `features` break.
pub(crate) fn contradictions<'r>(
    reference: &'r retail_model::drift::Reference,
    features: &'r [f64],
) -> impl Iterator<Item = Contradiction> + 'r {
    reference.contradictions(features).map(|(rule, has, wants)| {
        let name = |f: usize| reference.features.get(f).map_or_else(|| format!("feature {f}"), |r| r.name.clone());
        Contradiction {
            category: (name(rule.category), rule.label(has)),
            number: (name(rule.number), features[rule.number]),
            expected: (rule.interval(wants, short), rule.label(wants)),
        }
    })
}

/// One basket's answer, borrowing the model's names: serialised exactly as
/// [`PredictionResponse`] (a test compares them), so `/predict` writes its answer without
/// copying names into an owned response first.
#[derive(Debug, serde::Serialize)]
pub struct Answer<'a> {
    prediction: &'a str,
    label: &'a str,
    probabilities: Probabilities<'a>,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explanation: Option<Explanation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    basket_summary: Option<Box<BasketSummary>>,
}

/// Class code → probability, as a JSON object in code order (the order of
/// [`PredictionResponse`]'s map).
#[derive(Debug)]
struct Probabilities<'a> {
    classes: &'a [ClassInfo],
    p: Vec<f64>,
}

impl serde::Serialize for Probabilities<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut order: Vec<usize> = (0..self.p.len()).collect();
        order.sort_unstable_by_key(|&i| self.classes[i].code.as_str());
        let mut map = serializer.serialize_map(Some(order.len()))?;
        for i in order {
            map.serialize_entry(&self.classes[i].code, &self.p[i])?;
        }
        map.end()
    }
}

impl<'a> Answer<'a> {
    /// Names the request the answer belongs to.
    pub fn with_request_id(self, request_id: &'a str) -> Self {
        Self { request_id: Some(request_id), ..self }
    }

    /// The answer with the record's explanation (`None`: not asked for).
    pub fn with_explanation(self, explanation: Option<Explanation>) -> Self {
        Self { explanation, ..self }
    }

    /// The answer with the flat record derived from the body's `basket_items` (`None`: a flat
    /// record was sent).
    pub fn with_basket_summary(self, basket_summary: Option<Box<BasketSummary>>) -> Self {
        Self { basket_summary, ..self }
    }

    /// The answer as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        // Serialising strings, numbers and a map into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

impl From<Answer<'_>> for PredictionResponse {
    fn from(a: Answer<'_>) -> Self {
        Self {
            prediction: a.prediction.to_owned(),
            label: a.label.to_owned(),
            probabilities: a
                .probabilities
                .classes
                .iter()
                .zip(&a.probabilities.p)
                .map(|(c, &p)| (c.code.clone(), p))
                .collect(),
            model_version: a.model_version.to_owned(),
            request_id: a.request_id.map(str::to_owned),
            warnings: a.warnings,
            explanation: a.explanation,
            basket_summary: a.basket_summary,
        }
    }
}

/// The answer for one record's class probabilities, with its warnings.
pub fn answer<'a>(artifact: &'a Artifact, p: &[f64], warnings: Vec<String>) -> Answer<'a> {
    let m = &artifact.manifest;
    let best = &m.classes[argmax(p)];
    Answer {
        prediction: &best.code,
        label: &best.label,
        probabilities: Probabilities { classes: &m.classes, p: p.to_vec() },
        model_version: &m.version,
        request_id: None,
        warnings,
        explanation: None,
        basket_summary: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_borrowed_answer_is_written_as_the_response_schema() {
        let artifact = Artifact::embedded_default().expect("model");
        // Probabilities in an order that is not the classes' order, and an unseen value.
        let unseen = [Unseen { field: "STORE_REGION", value: "MARS".to_owned() }];
        let a = || answer(&artifact, &[0.2, 0.5, 0.3], unseen.iter().map(warning).collect()).with_request_id("abc");
        let owned = serde_json::to_vec(&PredictionResponse::from(a())).expect("json");
        assert_eq!(String::from_utf8(a().to_json()), String::from_utf8(owned));
        let plain = serde_json::to_value(answer(&artifact, &[0.2, 0.5, 0.3], Vec::new())).expect("json");
        assert_eq!(plain["prediction"], "MM");
        assert!(plain.get("request_id").is_none(), "no request id unless named");
    }

    #[test]
    fn warnings_quote_a_short_escaped_prefix() {
        let short = Unseen { field: "STORE_REGION", value: "MARS".to_owned() };
        assert_eq!(warning(&short), "STORE_REGION: unknown value \"MARS\"; scored as unseen");
        let mut long = [Unseen { field: "STORE_REGION", value: "\"\u{85}".repeat(10_000) }];
        let full = warning(&long[0]);
        clip(&mut long);
        assert_eq!(long[0].value.chars().count(), PREFIX_CHARS + 1);
        assert_eq!(warning(&long[0]), full, "clipping keeps the warning");
        let quoted = "\\\"\\u{85}".repeat(PREFIX_CHARS / 2);
        assert_eq!(full, format!("STORE_REGION: unknown value \"{quoted}\"…; scored as unseen"));
        let missing = Unseen { field: "STORE_FORMAT", value: String::new() };
        assert_eq!(warning(&missing), "STORE_FORMAT: not provided; scored as unseen");
    }

    #[test]
    fn out_of_range_warnings_show_short_numbers() {
        let far = OutOfRange { field: "SPEND".to_owned(), value: 9_000_000.0, range: [0.29, 428.0] };
        assert_eq!(far.to_string(), "SPEND: 9000000 is outside the training range [0.29, 428]");
        let small = OutOfRange { field: "x".to_owned(), value: -1.0 / 3.0, range: [0.001_234_567, 2.5] };
        assert_eq!(small.to_string(), "x: -0.333333 is outside the training range [0.00123457, 2.5]");
    }
}
