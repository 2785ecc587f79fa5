//! Answers: a prediction per basket, with a warning per category value scored as unseen. A
//! warning quotes at most [`PREFIX_CHARS`] characters of the value, escaped, so an answer never
//! grows with the values a caller sends.

use std::fmt::Write;

use retail_model::artifact::Artifact;
use retail_model::features::Unseen;
use retail_model::metrics::argmax;

use crate::schema::PredictionResponse;

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

/// The answer for one basket's class probabilities.
pub fn answer(artifact: &Artifact, p: &[f64], unseen: &[Unseen]) -> PredictionResponse {
    let m = &artifact.manifest;
    let best = &m.classes[argmax(p)];
    PredictionResponse {
        prediction: best.code.clone(),
        label: best.label.clone(),
        probabilities: m.classes.iter().zip(p).map(|(c, &p)| (c.code.clone(), p)).collect(),
        model_version: m.version.clone(),
        request_id: None,
        warnings: unseen.iter().map(warning).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
