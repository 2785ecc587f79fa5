//! A captured exchange: what the request path enqueues ([`Captured`], bodies kept as bytes so the
//! request pays no parsing), its JSON Lines form (written by the background writer), and where
//! its file goes ([`object_name`]).

use axum::body::Bytes;
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serialize;

/// Largest body kept per record (request and answer each); longer ones are cut and flagged.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// One scoring request and its answer, as enqueued.
#[derive(Debug, Clone)]
pub struct Captured {
    /// When the answer was ready.
    pub time: DateTime<Utc>,
    /// The configured model name that answered (or the default model's, for a request refused
    /// before a model was taken).
    pub model: String,
    /// The version that answered, if a model was taken.
    pub model_version: Option<String>,
    /// The request id (`x-request-id`).
    pub request_id: String,
    /// The route template (`/models/{name}/predict`).
    pub route: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// The request body (at most [`MAX_BODY_BYTES`]).
    pub input: Clipped,
    /// The answer body (at most [`MAX_BODY_BYTES`]).
    pub output: Clipped,
}

/// A body cut to [`MAX_BODY_BYTES`].
#[derive(Debug, Clone, Default)]
pub struct Clipped {
    /// The bytes kept.
    pub bytes: Bytes,
    /// Whether bytes were cut off.
    pub truncated: bool,
}

impl Clipped {
    /// `bytes`, cut to the cap (a cut body is copied, so the whole one is not kept alive).
    pub fn new(bytes: Bytes) -> Self {
        if bytes.len() <= MAX_BODY_BYTES {
            return Self { bytes, truncated: false };
        }
        Self { bytes: Bytes::copy_from_slice(&bytes[..MAX_BODY_BYTES]), truncated: true }
    }

    /// JSON when the bytes are JSON, else their text (lossy UTF-8), `null` when empty.
    fn value(&self) -> serde_json::Value {
        if self.bytes.is_empty() {
            return serde_json::Value::Null;
        }
        if !self.truncated
            && let Ok(value) = serde_json::from_slice(&self.bytes)
        {
            return value;
        }
        serde_json::Value::String(String::from_utf8_lossy(&self.bytes).into_owned())
    }
}

/// One line of a capture file.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    model: &'a str,
    model_version: Option<&'a str>,
    request_id: &'a str,
    route: &'a str,
    status: u16,
    input: serde_json::Value,
    output: serde_json::Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    input_truncated: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    output_truncated: bool,
}

impl Captured {
    /// The JSON Lines line, with its newline.
    pub fn to_line(&self) -> Vec<u8> {
        let line = Line {
            time: self.time.to_rfc3339_opts(SecondsFormat::Millis, true),
            model: &self.model,
            model_version: self.model_version.as_deref(),
            request_id: &self.request_id,
            route: &self.route,
            status: self.status,
            input: self.input.value(),
            output: self.output.value(),
            input_truncated: self.input.truncated,
            output_truncated: self.output.truncated,
        };
        // A struct of strings, numbers and JSON values always serializes.
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Bytes held by the record's bodies (what the queue's byte budget counts).
    pub fn size(&self) -> usize {
        self.input.bytes.len() + self.output.bytes.len()
    }
}

/// The relative name of a capture file or object: `<model>/<YYYY>/<MM>/<DD>/<HH>/capture-<instance>-<unix-ms>-<seq>.jsonl`,
/// partitioned by the hour (UTC) of its first record, `written_ms` the time of the write.
pub fn object_name(model: &str, hour: DateTime<Utc>, instance: &str, written_ms: i64, seq: u64) -> String {
    format!(
        "{}/{:04}/{:02}/{:02}/{:02}/capture-{}-{written_ms}-{seq:06}.jsonl",
        path_safe(model),
        hour.year(),
        hour.month(),
        hour.day(),
        hour.hour(),
        path_safe(instance)
    )
}

/// `text` with anything but ASCII letters, digits, `.`, `_` and `-` replaced by `_` (and never
/// `.` or `..`), so it is one path segment.
pub fn path_safe(text: &str) -> String {
    let safe: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') { safe.replace('.', "_") + "_" } else { safe }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(input: &[u8], output: &[u8]) -> Captured {
        Captured {
            time: DateTime::parse_from_rfc3339("2025-03-04T05:06:07.089Z").expect("time").with_timezone(&Utc),
            model: "retail-price-sensitivity".into(),
            model_version: Some("v1".into()),
            request_id: "abc".into(),
            route: "/predict".into(),
            status: 200,
            input: Clipped::new(Bytes::copy_from_slice(input)),
            output: Clipped::new(Bytes::copy_from_slice(output)),
        }
    }

    #[test]
    fn records_serialize_as_one_json_line() {
        let line = record(br#"{"SPEND":1.5}"#, br#"{"prediction":"MM"}"#).to_line();
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
        let value: serde_json::Value = serde_json::from_slice(&line).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"time": "2025-03-04T05:06:07.089Z", "model": "retail-price-sensitivity",
                "model_version": "v1", "request_id": "abc", "route": "/predict", "status": 200,
                "input": {"SPEND": 1.5}, "output": {"prediction": "MM"}})
        );
        let csv = record(b"M,MIXED\nL,FULL\n", b"").to_line();
        let value: serde_json::Value = serde_json::from_slice(&csv).expect("json");
        assert_eq!(
            (&value["input"], &value["output"]),
            (&serde_json::json!("M,MIXED\nL,FULL\n"), &serde_json::Value::Null)
        );
    }

    #[test]
    fn large_bodies_are_cut_and_flagged() {
        let big = format!("[{}1]", "1,".repeat(MAX_BODY_BYTES));
        let captured = record(big.as_bytes(), b"{}");
        assert_eq!(captured.input.bytes.len(), MAX_BODY_BYTES);
        let value: serde_json::Value = serde_json::from_slice(&captured.to_line()).expect("json");
        assert_eq!(value["input_truncated"], true);
        assert!(value["input"].as_str().is_some_and(|s| s.len() == MAX_BODY_BYTES), "kept as text");
        assert!(value.get("output_truncated").is_none());
    }

    #[test]
    fn files_are_partitioned_by_model_and_hour() {
        let hour = DateTime::parse_from_rfc3339("2025-03-04T05:59:59Z").expect("time").with_timezone(&Utc);
        assert_eq!(
            object_name("retail-price-sensitivity", hour, "pod-1", 1_741_067_999_000, 7),
            "retail-price-sensitivity/2025/03/04/05/capture-pod-1-1741067999000-000007.jsonl"
        );
        assert_eq!(object_name("../x", hour, "a/b", 1, 0), ".._x/2025/03/04/05/capture-a_b-1-000000.jsonl");
        assert_eq!(path_safe(".."), "___");
        assert_eq!(path_safe(""), "_");
    }
}
