//! A batch: records streamed out of the body one at a time, each encoded as soon as it is read
//! (so the batch keeps feature rows, never the records), stopping after `max_rows + 1` records;
//! then scored in chunks, checking for cancellation between them.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::record::{Parsed, RecordSeed};
use super::slot::{SlotVisitor, scalar_kinds};
use super::{Cancel, Encoder, FieldErrors, Notes, Row, ScoreError, Scorer};
use crate::schema::{ForecastResponse, PredictionResponse};

/// Rows scored between two cancellation checks.
pub(super) const CHUNK_ROWS: usize = 2048;

/// Most field errors listed across all the invalid records of one batch (each record also lists
/// at most [`super::MAX_LISTED`]); past it, a failed record lists none but still counts them.
pub const MAX_LISTED_IN_BATCH: usize = 1000;

/// What a batch does with invalid records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorsMode {
    /// Any invalid record fails the whole batch (422), every invalid field listed.
    #[default]
    AllOrNothing,
    /// Valid records are scored; each invalid one is answered in its place with its errors.
    Inline,
}

impl ErrorsMode {
    /// The mode a word names (`inline`, `all_or_nothing`), or why the word is not one.
    pub fn parse(word: &str) -> Result<Self, String> {
        match word {
            "inline" => Ok(Self::Inline),
            "all_or_nothing" => Ok(Self::AllOrNothing),
            other => Err(format!("must be \"inline\" or \"all_or_nothing\", got {}", super::answer::quote(other))),
        }
    }
}

/// A batch's answers, in request order, and how many records failed.
#[derive(Debug)]
pub struct BatchAnswers {
    /// One item per record.
    pub items: Vec<BatchItem>,
    /// Records answered with an error (only with [`ErrorsMode::Inline`]).
    pub failed: usize,
}

/// A record's answer: its prediction, or (inline errors) why it was not scored.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum BatchItem {
    /// A classifier's answer (a basket's, a tabular row's).
    Scored(PredictionResponse),
    /// A regression's answer (a day of sales', a tabular row's).
    Forecast(ForecastResponse),
    /// Not scored.
    Failed(RecordError),
}

/// An invalid record of a batch with inline errors.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordError {
    /// Its position in the batch (0-based).
    pub index: usize,
    /// `record has invalid fields`.
    pub error: &'static str,
    /// Its invalid fields (the first ones).
    pub details: Vec<retail_model::features::FieldError>,
    /// How many fields were invalid.
    pub total_errors: usize,
}

/// Why a batch stopped reading early.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stop {
    /// More records than the limit.
    TooMany,
    /// The caller gave up.
    Cancelled,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooMany => "too many records",
            Self::Cancelled => "cancelled",
        })
    }
}

/// The records of a batch so far: feature rows, warnings (values clipped), errors.
pub(crate) struct Batch<'p> {
    pub(crate) encoder: Encoder<'p>,
    max_rows: usize,
    cancel: Cancel,
    rows: Vec<f64>,
    notes: Vec<Notes>,
    /// Invalid records: index and errors, in order.
    failed: Vec<(usize, FieldErrors)>,
    /// Field errors that invalid records may still list.
    listed_budget: usize,
    /// The body asked for inline errors (`options.errors`).
    inline: bool,
    /// `options` held something other than what it may: the reason.
    bad_options: Option<String>,
    stop: Option<Stop>,
    /// `records` was there but not an array: its kind.
    not_array: Option<&'static str>,
}

impl<'p> Batch<'p> {
    /// An empty batch of at most `max_rows` records.
    pub(crate) fn new(encoder: Encoder<'p>, max_rows: usize, cancel: &Cancel) -> Self {
        Self {
            encoder,
            max_rows,
            cancel: cancel.clone(),
            rows: Vec::new(),
            notes: Vec::new(),
            failed: Vec::new(),
            listed_budget: MAX_LISTED_IN_BATCH,
            inline: false,
            bad_options: None,
            stop: None,
            not_array: None,
        }
    }

    /// Records so far.
    pub(crate) fn len(&self) -> usize {
        self.notes.len()
    }

    /// Adds the next record (`encode` reads it); stops past the row limit or when cancelled.
    pub(crate) fn push(&mut self, encode: impl FnOnce() -> Result<Row, FieldErrors>) -> Result<(), Stop> {
        let stop = if self.len() == self.max_rows {
            Some(Stop::TooMany)
        } else if self.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else {
            None
        };
        if let Some(stop) = stop {
            self.stop = Some(stop);
            return Err(stop);
        }
        let i = self.len();
        match encode() {
            Ok(mut row) => {
                self.rows.extend_from_slice(row.features());
                let mut notes = row.take_notes();
                notes.clip();
                self.notes.push(notes);
            }
            Err(mut errors) => {
                errors.keep_listed(self.listed_budget);
                self.listed_budget -= errors.listed().len();
                self.failed.push((i, errors));
                self.notes.push(Notes::default());
            }
        }
        Ok(())
    }

    /// Adds a record read from JSON (an object, or anything else: an error).
    pub(crate) fn push_parsed<E: de::Error>(&mut self, parsed: Parsed) -> Result<(), E> {
        self.push(|| match parsed {
            Parsed::Record(encoded) => encoded,
            Parsed::NotObject | Parsed::Batch => {
                let mut errors = FieldErrors::default();
                errors.field("body", || "must be a JSON object".to_owned());
                Err(errors)
            }
        })
        .map_err(E::custom)
    }

    /// The rows to score, or why there are none: the row limit, cancellation, a parse error,
    /// `records` not an array, invalid fields (unless inline errors were asked for, by `mode`
    /// or by the body), or no record at all.
    pub(crate) fn finish(self, parsed: Result<(), serde_json::Error>, mode: ErrorsMode) -> Result<Rows, ScoreError> {
        let invalid = |reason: String| {
            let mut errors = FieldErrors::default();
            errors.field("records", || reason);
            Err(ScoreError::Invalid(errors))
        };
        match self.stop {
            Some(Stop::TooMany) => {
                return invalid(format!("must hold 1 to {0} records, got more than {0}", self.max_rows));
            }
            Some(Stop::Cancelled) => return Err(ScoreError::Cancelled),
            None => {}
        }
        parsed.map_err(|e| ScoreError::Malformed(e.to_string()))?;
        if let Some(kind) = self.not_array {
            return invalid(format!("must be an array, got {kind}"));
        }
        if let Some(reason) = self.bad_options {
            let mut errors = FieldErrors::default();
            errors.field("options.errors", || reason);
            return Err(ScoreError::Invalid(errors));
        }
        if self.notes.is_empty() {
            return invalid(format!("must hold 1 to {} records, got 0", self.max_rows));
        }
        if mode == ErrorsMode::AllOrNothing && !self.inline && !self.failed.is_empty() {
            let mut errors = FieldErrors::default();
            for (i, record) in self.failed {
                errors.extend_prefixed(|| format!("records[{i}]."), record);
            }
            return Err(ScoreError::Invalid(errors));
        }
        Ok(Rows { rows: self.rows, notes: self.notes, failed: self.failed })
    }
}

/// A batch ready to score: the valid records' feature rows, every record's warnings, the
/// invalid records.
pub(crate) struct Rows {
    pub(super) rows: Vec<f64>,
    pub(super) notes: Vec<Notes>,
    pub(super) failed: Vec<(usize, FieldErrors)>,
}

impl Rows {
    /// The feature rows and warnings of a batch read all-or-nothing (no failed record).
    pub(crate) fn into_scored(self) -> (Vec<f64>, Vec<Notes>) {
        (self.rows, self.notes)
    }
}

/// Parses a whole body with `seed`, rejecting anything after the value.
pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(body: &'de [u8], seed: S) -> Result<S::Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = seed.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Streams an array of records into the batch; anything else is noted as not an array.
pub(crate) struct RecordsSeed<'b, 'p> {
    pub(crate) batch: Option<&'b mut Batch<'p>>,
}

impl<'de> DeserializeSeed<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl RecordsSeed<'_, '_> {
    fn kind(self, kind: &'static str) {
        if let Some(batch) = self.batch {
            batch.not_array = Some(kind);
        }
    }
}

impl<'de> Visitor<'de> for RecordsSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some(batch) = self.batch else {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            return Ok(());
        };
        let encoder = batch.encoder;
        while let Some(parsed) = seq.next_element_seed(RecordSeed { encoder, batch: None })? {
            batch.push_parsed(parsed)?;
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        SlotVisitor.visit_map(map)?;
        self.kind("an object");
        Ok(())
    }

    scalar_kinds!();
}

/// A `/predict/batch` body: `{"records": [...]}`; whether it had `records`.
pub(crate) struct BatchBodySeed<'b, 'p> {
    pub(crate) batch: &'b mut Batch<'p>,
}

impl<'de> DeserializeSeed<'de> for BatchBodySeed<'_, '_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl BatchBodySeed<'_, '_> {
    fn kind(self, _: &'static str) -> bool {
        false
    }
}

impl<'de> Visitor<'de> for BatchBodySeed<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with records")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        let mut found = false;
        while let Some(key) = map.next_key::<super::slot::Slot<'de>>()? {
            if !found && matches!(&key, super::slot::Slot::Str(k) if k == "records") {
                found = true;
                map.next_value_seed(RecordsSeed { batch: Some(&mut *self.batch) })?;
            } else if matches!(&key, super::slot::Slot::Str(k) if k == "options") {
                let options: Options<'de> = map.next_value()?;
                let mode = match &options.errors {
                    super::slot::Slot::Str(word) => ErrorsMode::parse(word),
                    absent if absent.is_absent() => Ok(ErrorsMode::AllOrNothing),
                    other => Err(format!("must be \"inline\" or \"all_or_nothing\", got {}", other.kind())),
                };
                match mode {
                    Ok(mode) => self.batch.inline = mode == ErrorsMode::Inline,
                    Err(reason) => self.batch.bad_options = Some(reason),
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        SlotVisitor.visit_seq(seq)?;
        Ok(false)
    }

    scalar_kinds!();
}

/// A batch body's `options`: `{"errors": "inline" | "all_or_nothing"}` (other keys and their
/// contents skipped, not stored).
#[derive(Default)]
struct Options<'a> {
    errors: super::slot::Slot<'a>,
}

impl<'de> de::Deserialize<'de> for Options<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OptionsVisitor)
    }
}

struct OptionsVisitor;

impl<'de> Visitor<'de> for OptionsVisitor {
    type Value = Options<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an options object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Options<'de>, A::Error> {
        let mut options = Options::default();
        while let Some(key) = map.next_key::<super::slot::Slot<'de>>()? {
            if matches!(&key, super::slot::Slot::Str(k) if k == "errors") {
                options.errors = map.next_value()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(options)
    }
}

/// An `/invocations` JSON body: `{"records": [...]}`, a bare array of records, or one record;
/// anything else gives its kind.
pub(crate) struct InvocationsSeed<'b, 'p> {
    pub(crate) batch: &'b mut Batch<'p>,
}

impl<'de> DeserializeSeed<'de> for InvocationsSeed<'_, '_> {
    type Value = Result<(), &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl InvocationsSeed<'_, '_> {
    fn kind(self, kind: &'static str) -> Result<(), &'static str> {
        Err(kind)
    }
}

impl<'de> Visitor<'de> for InvocationsSeed<'_, '_> {
    type Value = Result<(), &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        RecordsSeed { batch: Some(self.batch) }.visit_seq(seq)?;
        Ok(Ok(()))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let encoder = self.batch.encoder;
        match (RecordSeed { encoder, batch: Some(&mut *self.batch) }).visit_map(map)? {
            Parsed::Batch => {}
            record => self.batch.push_parsed(record)?,
        }
        Ok(Ok(()))
    }

    scalar_kinds!();
}

/// Class probabilities (a regression: its prediction) of feature rows (the engine's
/// `n_features` each), `n_classes` per row, computed on all cores in chunks with a cancellation
/// check before each.
pub fn probabilities<M: Scorer + ?Sized>(model: &M, rows: &[f64], cancel: &Cancel) -> Result<Vec<f64>, ScoreError> {
    let engine = &model.artifact().engine;
    let (nc, nf) = (engine.n_classes(), engine.n_features());
    let mut p = vec![0.0; rows.len() / nf * nc];
    for (rows, out) in rows.chunks(CHUNK_ROWS * nf).zip(p.chunks_mut(CHUNK_ROWS * nc)) {
        cancel.check()?;
        engine.predict_batch_parallel(rows, out);
    }
    Ok(p)
}
