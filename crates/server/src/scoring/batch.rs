//! A batch: records streamed out of the body one at a time, each encoded as soon as it is read
//! (so the batch keeps feature rows, never the records), stopping after `max_rows + 1` records;
//! then scored in chunks, checking for cancellation between them.

use std::fmt;

use retail_model::features::{Encoded, FeaturePipeline, N_FEATURES, Unseen};
use retail_model::metrics::argmax;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::answer::{answer, clip};
use super::record::{Parsed, RecordSeed};
use super::slot::{SlotVisitor, scalar_kinds};
use super::{Cancel, FieldErrors, ScoreError, Scorer};
use crate::schema::PredictionResponse;

/// Rows scored between two cancellation checks.
const CHUNK_ROWS: usize = 2048;

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

/// The records of a batch so far: feature rows, unseen values (clipped), errors.
pub(crate) struct Batch<'p> {
    pub(crate) pipeline: &'p FeaturePipeline,
    max_rows: usize,
    cancel: Cancel,
    rows: Vec<f64>,
    unseen: Vec<Vec<Unseen>>,
    errors: FieldErrors,
    stop: Option<Stop>,
    /// `records` was there but not an array: its kind.
    not_array: Option<&'static str>,
}

impl<'p> Batch<'p> {
    /// An empty batch of at most `max_rows` records.
    pub(crate) fn new(pipeline: &'p FeaturePipeline, max_rows: usize, cancel: &Cancel) -> Self {
        Self {
            pipeline,
            max_rows,
            cancel: cancel.clone(),
            rows: Vec::new(),
            unseen: Vec::new(),
            errors: FieldErrors::default(),
            stop: None,
            not_array: None,
        }
    }

    /// Records so far.
    pub(crate) fn len(&self) -> usize {
        self.unseen.len()
    }

    /// Adds the next record (`encode` reads it); stops past the row limit or when cancelled.
    pub(crate) fn push(
        &mut self,
        encode: impl FnOnce(&'p FeaturePipeline) -> Result<Encoded, FieldErrors>,
    ) -> Result<(), Stop> {
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
        match encode(self.pipeline) {
            Ok(Encoded { features, mut unseen }) => {
                clip(&mut unseen);
                self.rows.extend_from_slice(&features);
                self.unseen.push(unseen);
            }
            Err(errors) => {
                self.errors.extend_prefixed(|| format!("records[{i}]."), errors);
                self.unseen.push(Vec::new());
            }
        }
        Ok(())
    }

    /// Adds a record read from JSON (an object, or anything else: an error).
    pub(crate) fn push_parsed<E: de::Error>(&mut self, parsed: Parsed) -> Result<(), E> {
        self.push(|_| match parsed {
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
    /// `records` not an array, invalid fields, or no record at all.
    pub(crate) fn finish(
        self,
        parsed: Result<(), serde_json::Error>,
    ) -> Result<(Vec<f64>, Vec<Vec<Unseen>>), ScoreError> {
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
        self.errors.into_result()?;
        if self.unseen.is_empty() {
            return invalid(format!("must hold 1 to {} records, got 0", self.max_rows));
        }
        Ok((self.rows, self.unseen))
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
        let pipeline = batch.pipeline;
        while let Some(parsed) = seq.next_element_seed(RecordSeed { pipeline, batch: None })? {
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
        let pipeline = self.batch.pipeline;
        match (RecordSeed { pipeline, batch: Some(&mut *self.batch) }).visit_map(map)? {
            Parsed::Batch => {}
            record => self.batch.push_parsed(record)?,
        }
        Ok(Ok(()))
    }

    scalar_kinds!();
}

/// Class probabilities of feature rows (`N_FEATURES` each), `n_classes` per row, computed on all
/// cores in chunks with a cancellation check before each.
pub fn probabilities<M: Scorer + ?Sized>(model: &M, rows: &[f64], cancel: &Cancel) -> Result<Vec<f64>, ScoreError> {
    let engine = &model.artifact().engine;
    let nc = engine.n_classes();
    let mut p = vec![0.0; rows.len() / N_FEATURES * nc];
    for (rows, out) in rows.chunks(CHUNK_ROWS * N_FEATURES).zip(p.chunks_mut(CHUNK_ROWS * nc)) {
        cancel.check()?;
        engine.predict_batch_parallel(rows, out);
    }
    Ok(p)
}

/// Scores rows and builds their answers (counting each with the model), in request order.
pub(crate) fn answers<M: Scorer + ?Sized>(
    model: &M,
    (rows, unseen): (Vec<f64>, Vec<Vec<Unseen>>),
    cancel: &Cancel,
) -> Result<Vec<PredictionResponse>, ScoreError> {
    let p = probabilities(model, &rows, cancel)?;
    drop(rows);
    let nc = model.artifact().engine.n_classes();
    let mut answers = Vec::with_capacity(unseen.len());
    for (i, (p, unseen)) in p.chunks(nc).zip(unseen).enumerate() {
        if i % CHUNK_ROWS == 0 {
            cancel.check()?;
        }
        model.scored(argmax(p), &unseen);
        answers.push(answer(model.artifact(), p, &unseen).into());
    }
    Ok(answers)
}
