//! What a scoring call can fail with: a body that does not parse, invalid fields (the first
//! [`MAX_LISTED`] listed, all counted), a malformed v2 request, or cancellation.

use retail_model::features::{FieldError, InvalidInput};

/// Most field errors kept and listed; the others are only counted, so an answer (and the memory
/// spent on it) stays small however many fields a body gets wrong.
pub const MAX_LISTED: usize = 100;

/// Invalid fields: the first [`MAX_LISTED`] of them, and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    listed: Vec<FieldError>,
    total: usize,
}

impl FieldErrors {
    /// One error: `field` and `reason` are only formatted while the list has room.
    pub fn push(&mut self, field: impl FnOnce() -> String, reason: impl FnOnce() -> String) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(FieldError { field: field(), reason: reason() });
        }
    }

    /// One error with a fixed field name.
    pub fn field(&mut self, field: &str, reason: impl FnOnce() -> String) {
        self.push(|| field.to_owned(), reason);
    }

    /// Adds `other`'s errors, each field prefixed with `prefix()` (e.g. `records[3].`).
    pub fn extend_prefixed(&mut self, prefix: impl Fn() -> String, other: FieldErrors) {
        let room = MAX_LISTED.saturating_sub(self.listed.len());
        self.listed.extend(
            other.listed.into_iter().take(room).map(|e| FieldError { field: prefix() + &e.field, reason: e.reason }),
        );
        self.total += other.total;
    }

    /// No error at all.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many errors there were, listed or not.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The listed errors.
    pub fn listed(&self) -> &[FieldError] {
        &self.listed
    }

    /// One line: each listed error, then how many were not listed (for protocols whose errors
    /// are a single message, like inference protocol v2).
    pub fn summary(&self) -> String {
        let mut line = self.listed.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ");
        if self.total > self.listed.len() {
            line.push_str(&format!(
                "; {} more invalid fields not listed ({} in all)",
                self.total - self.listed.len(),
                self.total
            ));
        }
        line
    }

    /// Keeps only the first `n` listed errors (all still counted).
    pub fn keep_listed(&mut self, n: usize) {
        self.listed.truncate(n);
    }

    /// `Ok` when there is no error.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl From<InvalidInput> for FieldErrors {
    fn from(invalid: InvalidInput) -> Self {
        let mut errors = Self::default();
        errors.extend(invalid.errors);
        errors
    }
}

impl Extend<FieldError> for FieldErrors {
    fn extend<I: IntoIterator<Item = FieldError>>(&mut self, errors: I) {
        for e in errors {
            self.push(|| e.field, || e.reason);
        }
    }
}

/// Why a body was not scored.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The body is not valid JSON (or CSV): the parser's message.
    #[error("{0}")]
    Malformed(String),
    /// Fields are missing or invalid.
    #[error("request has invalid fields")]
    Invalid(FieldErrors),
    /// A v2 inference request is malformed (tensors, shapes, datatypes, outputs).
    #[error("{0}")]
    Request(String),
    /// Whoever waited for the answer gave up; the work stopped early.
    #[error("scoring was cancelled")]
    Cancelled,
    /// The model is of another kind than this request shape scores (e.g. basket records sent
    /// to a sales forecast).
    #[error("model {model} is a {kind} and does not score {shape}")]
    WrongModel {
        /// The configured model.
        model: String,
        /// Its kind.
        kind: &'static str,
        /// What the request holds.
        shape: &'static str,
    },
    /// An explanation was asked of a model that cannot explain (its artifact has no covers).
    #[error("{0}")]
    Explain(retail_model::explain::ExplainError),
    /// An explanation was asked with a credential that lacks the `explain` scope.
    #[error("the credential lacks the scope explain")]
    ExplainNotAllowed,
}

impl From<FieldErrors> for ScoreError {
    fn from(errors: FieldErrors) -> Self {
        Self::Invalid(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_errors_are_kept_and_all_are_counted() {
        let mut errors = FieldErrors::default();
        for i in 0..250 {
            errors.push(|| format!("f{i}"), || "bad".to_owned());
        }
        let mut batch = FieldErrors::default();
        batch.extend_prefixed(|| "records[0].".to_owned(), errors);
        assert_eq!((batch.listed().len(), batch.total()), (MAX_LISTED, 250));
        assert_eq!(batch.listed()[0].field, "records[0].f0");
        assert!(batch.summary().ends_with("; 150 more invalid fields not listed (250 in all)"), "{}", batch.summary());
    }
}
