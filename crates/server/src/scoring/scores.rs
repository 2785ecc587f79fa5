//! A batch scored, before its answers are built: each record's outputs (a classifier's class
//! probabilities in the model's class order, a regression's value), warnings and explanation,
//! or its error. `/invocations` turns them into answers ([`Scores::into_answers`]); offline
//! scoring writes its CSV rows straight from them, without building an answer per record.

use retail_model::artifact::Artifact;

use super::answer::answer;
use super::batch::{BatchAnswers, BatchItem, CHUNK_ROWS, RecordError, Rows, probabilities};
use super::sales::forecast_response;
use super::{Cancel, Explaining, Explanation, ScoreError, Scorer, is_regression};

/// A batch's scores, in request order.
#[derive(Debug)]
pub struct Scores<'m> {
    artifact: &'m Artifact,
    /// The scored records' outputs, `width` each.
    outputs: Vec<f64>,
    width: usize,
    records: Vec<RecordScores>,
}

/// One record's scores, or why it was not scored.
#[derive(Debug)]
enum RecordScores {
    Scored { row: usize, warnings: Vec<String>, explanation: Option<Explanation> },
    Failed(RecordError),
}

/// One record's scores, borrowed.
#[derive(Debug, Clone, Copy)]
pub enum Record<'s> {
    /// Scored: its outputs (class probabilities in the model's class order, or a regression's
    /// one value), warnings and explanation (when asked for).
    Scored {
        /// Class probabilities, or the one predicted value.
        outputs: &'s [f64],
        /// Its warnings.
        warnings: &'s [String],
        /// Its explanation.
        explanation: Option<&'s Explanation>,
    },
    /// Not scored.
    Failed(&'s RecordError),
}

/// Scores rows (counting each with the model), in request order, each invalid record in its
/// place; each explained when `explaining`.
pub(crate) fn scores<'m, M: Scorer + ?Sized>(
    model: &'m M,
    batch: Rows,
    explaining: Option<&Explaining<'_>>,
    cancel: &Cancel,
) -> Result<Scores<'m>, ScoreError> {
    let Rows { rows, notes, failed } = batch;
    let outputs = probabilities(model, &rows, cancel)?;
    let artifact = model.artifact();
    let (width, nf) = (artifact.engine.n_classes(), artifact.engine.n_features().max(1));
    let explained = match explaining {
        Some(e) => e.rows(&rows, nf, cancel)?,
        None => Vec::new(),
    };
    let mut explained = explained.into_iter().map(|raw| explaining.map(|e| e.wire(raw)));
    let mut features = rows.chunks(nf).zip(outputs.chunks(width)).enumerate();
    let mut failures = failed.into_iter().peekable();
    let mut records = Vec::with_capacity(notes.len());
    for (i, notes) in notes.into_iter().enumerate() {
        if i % CHUNK_ROWS == 0 {
            cancel.check()?;
        }
        if let Some((_, errors)) = failures.next_if(|(index, _)| *index == i) {
            records.push(RecordScores::Failed(RecordError {
                index: i,
                error: "record has invalid fields",
                total_errors: errors.total(),
                details: errors.listed().to_vec(),
            }));
            continue;
        }
        let fewer = || ScoreError::Request("fewer scores than records".to_owned());
        let (row, (features, p)) = features.next().ok_or_else(fewer)?;
        let warnings = super::noted(model, features, p, notes).warnings();
        records.push(RecordScores::Scored { row, warnings, explanation: explained.next().flatten() });
    }
    Ok(Scores { artifact, outputs, width, records })
}

impl<'m> Scores<'m> {
    /// Records, scored or not.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Record `i`'s scores.
    pub fn record(&self, i: usize) -> Record<'_> {
        match &self.records[i] {
            RecordScores::Scored { row, warnings, explanation } => Record::Scored {
                outputs: &self.outputs[row * self.width..(row + 1) * self.width],
                warnings,
                explanation: explanation.as_ref(),
            },
            RecordScores::Failed(e) => Record::Failed(e),
        }
    }

    /// Record `i`'s answer, as `/invocations` gives it.
    pub fn answer(&self, i: usize) -> BatchItem {
        match self.record(i) {
            Record::Scored { outputs, warnings, explanation } => {
                Self::built(self.artifact, outputs, warnings.to_vec(), explanation.cloned())
            }
            Record::Failed(e) => BatchItem::Failed(e.clone()),
        }
    }

    /// The answers, as `/invocations` gives them.
    pub fn into_answers(self) -> BatchAnswers {
        let mut failed = 0;
        let mut items = Vec::with_capacity(self.records.len());
        for record in self.records {
            items.push(match record {
                RecordScores::Scored { row, warnings, explanation } => {
                    let outputs = &self.outputs[row * self.width..(row + 1) * self.width];
                    Self::built(self.artifact, outputs, warnings, explanation)
                }
                RecordScores::Failed(e) => {
                    failed += 1;
                    BatchItem::Failed(e)
                }
            });
        }
        BatchAnswers { items, failed }
    }

    /// A scored record's answer: a regression's forecast, or a classifier's prediction.
    fn built(
        artifact: &Artifact,
        outputs: &[f64],
        warnings: Vec<String>,
        explanation: Option<Explanation>,
    ) -> BatchItem {
        if is_regression(artifact) {
            let answer = forecast_response(outputs[0], &artifact.manifest.version, warnings);
            BatchItem::Forecast(crate::schema::ForecastResponse { explanation, ..answer })
        } else {
            BatchItem::Scored(answer(artifact, outputs, warnings).with_explanation(explanation).into())
        }
    }
}
