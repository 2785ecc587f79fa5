//! Request parsing and scoring, without HTTP: the server's routes, the offline `retail-api
//! predict` command and future model kinds share it. It takes bytes (a JSON `/predict` body, a
//! batch, SageMaker CSV rows, v2 tensors), limits and a model, and returns typed answers or the
//! invalid fields ([`FieldErrors`]).
//!
//! Memory per request stays within a small multiple of the body: bodies are read in one pass by
//! serde visitors into typed values borrowed from the body (never a `serde_json::Value` tree of
//! the whole body); each record is encoded as soon as it is read, so a batch keeps feature rows,
//! not records; reading stops after `max_rows + 1` records; at most [`MAX_LISTED`] field
//! errors are kept; a warning quotes at most [`PREFIX_CHARS`] characters of a value. Batch work
//! checks a [`Cancel`] flag between records and between chunks of rows.

mod answer;
mod batch;
mod cancel;
mod csv;
mod errors;
mod explain;
mod items;
mod record;
mod sales;
mod scores;
mod shape;
mod slot;
mod tabular;
pub mod v2;

use retail_model::artifact::{Artifact, Features, ModelKind};
use retail_model::features::{BasketRecord, Encoded, FeaturePipeline, Unseen};
use retail_model::forecast::{SalesEncoded, SalesStats};
use retail_model::metrics::argmax;
use retail_model::tabular::{TabularSchema, TabularWarning};

pub use answer::{Answer, Contradiction, OutOfRange, PREFIX_CHARS, answer, warning};
use batch::{Batch, BatchBodySeed, InvocationsSeed, parse};
pub use batch::{BatchAnswers, BatchItem, ErrorsMode, MAX_LISTED_IN_BATCH, RecordError, probabilities};
pub use cancel::{Cancel, CancelOnDrop};
pub use csv::{CSV_COLUMNS, csv_scores, score_csv};
pub use errors::{FieldErrors, MAX_LISTED, ScoreError};
pub use explain::{
    ContributionTensors, Explaining, Explanation, ExplanationBase, ExplanationContributions, ExplanationSchema,
};
use record::{Parsed, RecordSeed};
pub use sales::SALES_FIELDS;
use sales::forecast_response;
use scores::scores;
pub use scores::{Record, Scores};
pub use shape::{BodyShape, may_be_other_shape, shape};

use crate::LoadedModel;
use crate::schema::{BasketSummary, ForecastResponse};

/// How a model reads its records: the feature pipeline of its kind.
#[derive(Debug, Clone, Copy)]
pub enum Encoder<'p> {
    /// A basket classifier's.
    Basket(&'p FeaturePipeline),
    /// A sales forecast's statistics.
    Sales(&'p SalesStats),
    /// A tabular model's columns.
    Tabular(&'p TabularSchema),
}

/// One record's feature row and what it is warned about.
pub(crate) enum Row {
    /// A basket's.
    Basket(Encoded),
    /// A basket sent as `basket_items`: its features and the flat record derived from the items.
    Items(Encoded, Box<BasketRecord>),
    /// A day of sales'.
    Sales(SalesEncoded),
    /// A tabular row's.
    Tabular {
        /// One value per column (NaN: missing).
        features: Vec<f64>,
        /// Unseen categories and out-of-range numbers.
        warnings: Vec<TabularWarning>,
    },
}

impl Row {
    fn features(&self) -> &[f64] {
        match self {
            Self::Basket(e) | Self::Items(e, _) => &e.features,
            Self::Sales(e) => &e.features,
            Self::Tabular { features, .. } => features,
        }
    }

    /// The flat record derived from `basket_items`, for the answer (`None` for other rows).
    fn basket_summary(&self) -> Option<Box<BasketSummary>> {
        match self {
            Self::Items(_, record) => Some(Box::new(BasketSummary::from(record.as_ref()))),
            Self::Basket(_) | Self::Sales(_) | Self::Tabular { .. } => None,
        }
    }

    /// Its warnings, leaving the features.
    fn take_notes(&mut self) -> Notes {
        let pipeline = |unseen: &mut Vec<Unseen>| Notes::Pipeline {
            unseen: std::mem::take(unseen),
            out_of_range: Vec::new(),
            contradictions: Vec::new(),
        };
        match self {
            Self::Basket(e) | Self::Items(e, _) => pipeline(&mut e.unseen),
            Self::Sales(e) => pipeline(&mut e.unseen),
            Self::Tabular { warnings, .. } => {
                Notes::Tabular { warnings: std::mem::take(warnings), contradictions: Vec::new() }
            }
        }
    }
}

/// What a scored record is warned about: the values a basket or forecast pipeline scored as
/// unseen and the values outside the training range, or a tabular model's warnings.
#[derive(Debug)]
pub enum Notes {
    /// Unseen values and values out of range (basket classifier, sales forecast).
    Pipeline {
        /// Values scored as unseen.
        unseen: Vec<Unseen>,
        /// Feature values outside the training range (with its margin).
        out_of_range: Vec<OutOfRange>,
        /// Rules of the training data the record breaks.
        contradictions: Vec<Contradiction>,
    },
    /// Unseen categories and out-of-range numbers (tabular models).
    Tabular {
        /// From the model's schema.
        warnings: Vec<TabularWarning>,
        /// Rules of the training data the record breaks.
        contradictions: Vec<Contradiction>,
    },
}

impl Default for Notes {
    fn default() -> Self {
        Self::Pipeline { unseen: Vec::new(), out_of_range: Vec::new(), contradictions: Vec::new() }
    }
}

impl Notes {
    /// The answer's `warnings`, each quoting at most [`PREFIX_CHARS`] characters of a value.
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Self::Pipeline { unseen, out_of_range, contradictions } => unseen
                .iter()
                .map(warning)
                .chain(out_of_range.iter().map(ToString::to_string))
                .chain(contradictions.iter().map(ToString::to_string))
                .collect(),
            Self::Tabular { warnings, contradictions } => {
                warnings.iter().map(ToString::to_string).chain(contradictions.iter().map(ToString::to_string)).collect()
            }
        }
    }

    /// Shortens the values kept to what a warning shows.
    pub(crate) fn clip(&mut self) {
        match self {
            Self::Pipeline { unseen, .. } => answer::clip(unseen),
            Self::Tabular { warnings, .. } => tabular::clip(warnings),
        }
    }
}

/// Whether a model answers with a number (a sales forecast, a tabular regressor) rather than a
/// class and its probabilities.
pub fn is_regression(artifact: &Artifact) -> bool {
    matches!(artifact.kind(), ModelKind::SalesForecast | ModelKind::TabularRegressor)
}

/// A model to score with: its artifact, and where it counts what it scored.
pub trait Scorer {
    /// The artifact: feature pipeline, engine, classes.
    fn artifact(&self) -> &Artifact;

    /// The name it is served under (errors name it).
    fn name(&self) -> &str {
        &self.artifact().manifest.name
    }

    /// How this model reads its records.
    fn encoder(&self) -> Encoder<'_> {
        match &self.artifact().features {
            Features::Basket(pipeline) => Encoder::Basket(pipeline),
            Features::Sales(stats) => Encoder::Sales(stats),
            Features::Tabular(schema) => Encoder::Tabular(schema),
        }
    }

    /// A basket classifier's feature pipeline, or why this model cannot score baskets.
    fn basket_pipeline(&self) -> Result<&FeaturePipeline, ScoreError> {
        self.artifact().pipeline().ok_or_else(|| ScoreError::WrongModel {
            model: self.name().to_owned(),
            kind: self.artifact().kind().as_str(),
            shape: "basket records",
        })
    }

    /// Counts one scored record: its feature row, its output (a classifier's probabilities, a
    /// regression's value) and its warnings.
    fn scored(&self, _features: &[f64], _output: &[f64], _notes: &Notes) {}
}

/// An artifact scores without counting (the offline command).
impl Scorer for Artifact {
    fn artifact(&self) -> &Artifact {
        self
    }
}

/// A served model counts its predictions in the Prometheus metrics.
impl Scorer for LoadedModel {
    fn artifact(&self) -> &Artifact {
        &self.artifact
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn scored(&self, features: &[f64], output: &[f64], notes: &Notes) {
        self.counters.record(argmax(output), notes);
        if let (Some(monitor), Some(reference)) = (&self.drift, &self.artifact.reference) {
            monitor.observe(reference, features, output);
        }
    }
}

/// A scored record's warnings, with its values outside the training range for a basket or
/// sales model (a tabular model warns from its schema) and the training data's rules it breaks
/// (any model), counted by `model`.
fn noted<M: Scorer + ?Sized>(model: &M, features: &[f64], output: &[f64], mut notes: Notes) -> Notes {
    if let Some(reference) = &model.artifact().reference {
        if let Notes::Pipeline { out_of_range, .. } = &mut notes {
            out_of_range.extend(answer::out_of_range(reference, features));
        }
        let (Notes::Pipeline { contradictions, .. } | Notes::Tabular { contradictions, .. }) = &mut notes;
        contradictions.extend(answer::contradictions(reference, features));
    }
    model.scored(features, output, &notes);
    notes
}

fn malformed(e: serde_json::Error) -> ScoreError {
    ScoreError::Malformed(e.to_string())
}

fn invalid(field: &str, reason: String) -> ScoreError {
    let mut errors = FieldErrors::default();
    errors.field(field, || reason);
    ScoreError::Invalid(errors)
}

/// One record's answer: a class and its probabilities (basket or tabular classifier), or a
/// number (sales forecast, tabular regressor), serialised as either.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum One<'m> {
    /// A classifier's.
    Basket(Answer<'m>),
    /// A regression's.
    Forecast(ForecastResponse),
}

impl<'m> One<'m> {
    /// Names the request the answer belongs to.
    pub fn with_request_id(self, request_id: &'m str) -> Self {
        match self {
            Self::Basket(a) => Self::Basket(a.with_request_id(request_id)),
            Self::Forecast(f) => Self::Forecast(ForecastResponse { request_id: Some(request_id.to_owned()), ..f }),
        }
    }

    /// The answer as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        match self {
            Self::Basket(a) => a.to_json(),
            // Serialising a number, strings and a list into a Vec cannot fail.
            Self::Forecast(f) => serde_json::to_vec(f).unwrap_or_default(),
        }
    }
}

/// Scores one `/predict` body: for a basket classifier the flat record or the `basket_items`
/// shape; for a sales forecast `{"features": {...}}` or the flat fields; for a tabular model
/// `{"features": {...}}` by column name or `{"features": [...]}` in column order. With
/// `explain`, the answer carries the record's explanation ([`ScoreError::Explain`] when the
/// model cannot explain).
pub fn score_one<'m, M: Scorer + ?Sized>(model: &'m M, body: &[u8], explain: bool) -> Result<One<'m>, ScoreError> {
    let artifact = model.artifact();
    let explaining = explain.then(|| Explaining::of(artifact)).transpose()?;
    let mut row = match parse(body, RecordSeed { encoder: model.encoder(), batch: None }).map_err(malformed)? {
        Parsed::Record(row) => row?,
        Parsed::NotObject | Parsed::Batch => return Err(invalid("body", "must be a JSON object".to_owned())),
    };
    let explanation = explaining.map(|e| e.one(row.features()));
    if is_regression(artifact) {
        let value = artifact.engine.predict_value(row.features());
        let notes = row.take_notes();
        let notes = noted(model, row.features(), &[value], notes);
        let answer = forecast_response(value, &artifact.manifest.version, notes.warnings());
        return Ok(One::Forecast(ForecastResponse { explanation, ..answer }));
    }
    let mut p = vec![0.0; artifact.engine.n_classes()];
    artifact.engine.predict_proba(row.features(), &mut p);
    let notes = row.take_notes();
    let notes = noted(model, row.features(), &p, notes);
    let answer = answer(artifact, &p, notes.warnings()).with_explanation(explanation);
    Ok(One::Basket(answer.with_basket_summary(row.basket_summary())))
}

/// Scores a batch body, `{"records": [...]}` of at most `max_rows` records, in request order;
/// every invalid field is listed as `records[i].FIELD` (or, with inline errors asked for by
/// `mode` or by the body's `options.errors`, each invalid record is answered in its place).
/// With `explain`, each answer carries its record's explanation.
pub fn score_batch<M: Scorer + ?Sized>(
    model: &M,
    body: &[u8],
    limits: (usize, ErrorsMode),
    explain: bool,
    cancel: &Cancel,
) -> Result<BatchAnswers, ScoreError> {
    let (max_rows, mode) = limits;
    let explaining = explain.then(|| Explaining::of(model.artifact())).transpose()?;
    let mut batch = Batch::new(model.encoder(), max_rows, cancel);
    let found = parse(body, BatchBodySeed { batch: &mut batch });
    if matches!(found, Ok(false)) {
        return Err(invalid("records", "is required".to_owned()));
    }
    scores(model, batch.finish(found.map(|_| ()), mode)?, explaining.as_ref(), cancel).map(Scores::into_answers)
}

/// Scores a SageMaker `/invocations` JSON body: `{"records": [...]}`, a bare array of records,
/// or one record; with `explain`, each answer carries its record's explanation.
pub fn score_invocations<M: Scorer + ?Sized>(
    model: &M,
    body: &[u8],
    limits: (usize, ErrorsMode),
    explain: bool,
    cancel: &Cancel,
) -> Result<BatchAnswers, ScoreError> {
    invocations_scores(model, body, limits, explain, cancel).map(Scores::into_answers)
}

/// [`score_invocations`]' scores, before answers are built from them.
pub fn invocations_scores<'m, M: Scorer + ?Sized>(
    model: &'m M,
    body: &[u8],
    limits: (usize, ErrorsMode),
    explain: bool,
    cancel: &Cancel,
) -> Result<Scores<'m>, ScoreError> {
    let (max_rows, mode) = limits;
    let explaining = explain.then(|| Explaining::of(model.artifact())).transpose()?;
    let mut batch = Batch::new(model.encoder(), max_rows, cancel);
    let parsed = match parse(body, InvocationsSeed { batch: &mut batch }) {
        Ok(Err(kind)) => return Err(invalid("body", format!("must be records, got {kind}"))),
        Ok(Ok(())) => Ok(()),
        Err(e) => Err(e),
    };
    scores(model, batch.finish(parsed, mode)?, explaining.as_ref(), cancel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::PredictionResponse;

    const SEED: &str = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;

    const ALL: ErrorsMode = ErrorsMode::AllOrNothing;

    #[test]
    fn inline_errors_answer_each_invalid_record_in_its_place() {
        let artifact = Artifact::embedded_default().expect("model");
        let cancel = Cancel::default();
        let body = format!("{{\"records\":[{SEED},{{\"SPEND\":-1}},{SEED}],\"options\":{{\"errors\":\"inline\"}}}}");
        for mode in [ALL, ErrorsMode::Inline] {
            let answers = score_batch(&artifact, body.as_bytes(), (10, mode), false, &cancel).expect("scored");
            assert_eq!(answers.failed, 1);
            assert!(
                matches!(&answers.items[..], [BatchItem::Scored(_), BatchItem::Failed(f), BatchItem::Scored(_)] if f.index == 1 && f.total_errors == 8)
            );
        }
        let all = body.replace(",\"options\":{\"errors\":\"inline\"}", "");
        assert!(matches!(
            score_batch(&artifact, all.as_bytes(), (10, ALL), false, &cancel),
            Err(ScoreError::Invalid(_))
        ));
        let bad = body.replace("\"inline\"", "\"some\"");
        let e = score_batch(&artifact, bad.as_bytes(), (10, ALL), false, &cancel).expect_err("bad option");
        assert_eq!(fields(e), ["options.errors: must be \"inline\" or \"all_or_nothing\", got \"some\""]);
        let csv = "M,MIXED,LONDON,LS,125.50,3,FOOD,FRESH\nM,MIXED\nM,MIXED,LONDON,LS,-1,3,FOOD,FRESH\n";
        let answers = score_csv(&artifact, csv.as_bytes(), (10, ErrorsMode::Inline), false, &cancel).expect("scored");
        assert_eq!((answers.items.len(), answers.failed), (3, 2));
        assert!(score_csv(&artifact, csv.as_bytes(), (10, ALL), false, &cancel).is_err());
    }

    fn fields(e: ScoreError) -> Vec<String> {
        match e {
            ScoreError::Invalid(errors) => {
                errors.listed().iter().map(|e| format!("{}: {}", e.field, e.reason)).collect()
            }
            other => panic!("not invalid fields: {other}"),
        }
    }

    #[test]
    fn a_batch_stops_reading_after_one_record_past_the_limit() {
        let artifact = Artifact::embedded_default().expect("model");
        let cancel = Cancel::default();
        // What follows the third record is never read: not even its syntax error.
        let body = format!("{{\"records\":[{SEED},{SEED},{SEED},this is not JSON");
        let e = score_batch(&artifact, body.as_bytes(), (2, ALL), false, &cancel).expect_err("too many");
        assert_eq!(fields(e), ["records: must hold 1 to 2 records, got more than 2"]);
        let body = format!("{{\"records\":[{SEED},{SEED}]}}");
        assert_eq!(score_batch(&artifact, body.as_bytes(), (2, ALL), false, &cancel).expect("scored").items.len(), 2);
        cancel.cancel();
        assert!(matches!(
            score_batch(&artifact, body.as_bytes(), (2, ALL), false, &cancel),
            Err(ScoreError::Cancelled)
        ));
    }

    #[test]
    fn every_shape_of_records_reads_the_same() {
        let artifact = Artifact::embedded_default().expect("model");
        let cancel = Cancel::default();
        let Ok(One::Basket(one)) = score_one(&artifact, SEED.as_bytes(), false) else { panic!("not a basket answer") };
        let one = PredictionResponse::from(one);
        let csv = "BASKET_SIZE,BASKET_TYPE,STORE_REGION,STORE_FORMAT,SPEND,QUANTITY,PROD_CODE_20,PROD_CODE_30\nM,MIXED,LONDON,LS,125.50,3,FOOD,FRESH\n";
        let spaced = " BASKET_SIZE ,BASKET_TYPE,STORE_REGION,STORE_FORMAT,SPEND,QUANTITY,PROD_CODE_20,PROD_CODE_30\n M , MIXED,\"LONDON \",LS\t, 125.50 ,3 ,FOOD,FRESH  \n";
        let batches = [
            score_batch(&artifact, format!("{{\"records\":[{SEED}]}}").as_bytes(), (10, ALL), false, &cancel),
            score_invocations(&artifact, format!("[{SEED}]").as_bytes(), (10, ALL), false, &cancel),
            score_invocations(&artifact, SEED.as_bytes(), (10, ALL), false, &cancel),
            score_csv(&artifact, csv.as_bytes(), (10, ALL), false, &cancel),
            // Cells (and the header) are read trimmed, quoted ones too.
            score_csv(&artifact, spaced.as_bytes(), (10, ALL), false, &cancel),
        ];
        for batch in batches {
            let Some(BatchItem::Scored(first)) = batch.expect("scored").items.into_iter().next() else {
                panic!("not scored")
            };
            assert_eq!(first.probabilities, one.probabilities);
        }
        let e = score_invocations(&artifact, b"\"x\"", (10, ALL), false, &cancel).expect_err("not records");
        assert_eq!(fields(e), ["body: must be records, got a string"]);
        let e = score_csv(&artifact, b"M,MIXED,LONDON,LS,abc,0,FOOD,FRESH", (10, ALL), false, &cancel)
            .expect_err("invalid");
        assert_eq!(
            fields(e),
            ["records[0].SPEND: must be a number, got a string", "records[0].QUANTITY: must be >= 1, got 0"]
        );
    }
}
