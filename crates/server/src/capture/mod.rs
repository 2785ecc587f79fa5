//! Opt-in payload capture (`CAPTURE_SAMPLE_PERCENT` of scoring requests, to `CAPTURE_URI`): a
//! route layer on the scoring groups ([`layer`]) samples requests with a lock-free random draw
//! and, for a sampled one, enqueues its body, its answer's body, status, route, request id and
//! model — never a header — without waiting (`try_send`: a full queue drops the record and counts
//! it). A background [`Writer`] batches the queue into JSON Lines files partitioned by model and
//! hour, in a local directory or an S3 prefix.

mod config;
mod record;
mod writer;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::mpsc;

pub use config::{CaptureConfig, CaptureConfigError, CaptureSettings, CaptureTarget};
pub use record::{Captured, Clipped, MAX_BODY_BYTES, object_name};
pub use writer::Writer;

use crate::AppState;
use crate::error::PendingError;
use crate::routes::Scored;

/// Body bytes queued at most, across records (beyond, records are dropped as for a full queue).
const MAX_QUEUED_BYTES: usize = 256 * 1024 * 1024;

/// The capture queue's sending side, the sampling draw, and (until the server starts it) the
/// receiving side for the writer.
#[derive(Debug)]
pub struct Capture {
    config: CaptureConfig,
    /// A draw below this samples the request (`u64::MAX` with 100 %).
    threshold: u64,
    seed: u64,
    draws: AtomicU64,
    queue: mpsc::Sender<Captured>,
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Captured>>>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Capture {
    /// The queue for `config` (the writer starts with [`Capture::start`]).
    pub fn new(config: CaptureConfig) -> Self {
        describe_metrics();
        let (queue, receiver) = mpsc::channel(config.queue);
        let fraction = config.sample_percent / 100.0;
        // Saturating float-to-int: 100 % gives u64::MAX (and the draw also passes at equality).
        let threshold = (fraction * 18_446_744_073_709_551_616.0) as u64;
        Self {
            config,
            threshold,
            seed: RandomState::new().hash_one(std::process::id()),
            draws: AtomicU64::new(0),
            queue,
            receiver: std::sync::Mutex::new(Some(receiver)),
            queued_bytes: Arc::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CaptureConfig {
        &self.config
    }

    /// Starts the writer (once; `None` after the first call, or when its S3 client cannot be
    /// built, which is logged).
    pub fn start(&self) -> Option<Writer> {
        let receiver = self.receiver.lock().ok()?.take()?;
        match Writer::start(&self.config, receiver, self.queued_bytes.clone()) {
            Ok(writer) => Some(writer),
            Err(error) => {
                tracing::error!(%error, target = %self.config.target, "payload capture: cannot start the writer");
                None
            }
        }
    }

    /// Whether to capture this request: a SplitMix64 draw on an atomic counter (no lock).
    pub fn sampled(&self) -> bool {
        let mut z = self.draws.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(self.seed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        z < self.threshold || self.threshold == u64::MAX
    }

    /// Enqueues `record` without waiting; a full queue (or byte budget) drops it, counted.
    pub fn offer(&self, record: Captured) {
        let size = record.size();
        if self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size > MAX_QUEUED_BYTES {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            return dropped();
        }
        if self.queue.try_send(record).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            dropped();
        }
    }
}

fn dropped() {
    metrics::counter!("retail_api_capture_dropped_total", "reason" => "queue_full").increment(1);
}

fn describe_metrics() {
    metrics::describe_counter!("retail_api_capture_records_total", "Captured request/answer records written");
    metrics::describe_counter!(
        "retail_api_capture_dropped_total",
        "Captured records dropped, by reason (queue_full, write_failed)"
    );
    metrics::counter!("retail_api_capture_records_total").increment(0);
    for reason in ["queue_full", "write_failed"] {
        metrics::counter!("retail_api_capture_dropped_total", "reason" => reason).increment(0);
    }
}

/// The scoring groups' capture layer (inside admission: the request body is already in memory,
/// and answers are built from bytes, so both are taken without copying). Requests not sampled
/// pass straight through.
pub async fn layer(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(capture) = state.capture.as_ref().filter(|c| c.sampled()) else { return next.run(request).await };
    let (parts, body) = request.into_parts();
    let input = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let request_id = crate::edge::request_id::id_of(parts.extensions.get()).to_owned();
    let route = parts.extensions.get::<MatchedPath>().map_or_else(String::new, |p| p.as_str().to_owned());
    let response = next.run(Request::from_parts(parts, Body::from(input.clone()))).await;
    let (parts, body) = response.into_parts();
    // Answers are whole bodies; anything else (none today) passes untouched, its output unrecorded.
    let (output, body) = match body.size_hint().exact() {
        Some(_) => {
            let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            (bytes.clone(), Body::from(bytes))
        }
        None => (Default::default(), body),
    };
    let output = match parts.extensions.get::<PendingError>() {
        Some(pending) if output.is_empty() => pending.to_json(&request_id).into(),
        _ => output,
    };
    let scored = parts.extensions.get::<Scored>();
    let model = scored.map_or_else(|| state.models().default_slot().name().to_owned(), |s| s.model.name.to_string());
    capture.offer(Captured {
        time: chrono::Utc::now(),
        model,
        model_version: scored.map(|s| s.model.artifact.manifest.version.clone()),
        request_id,
        route,
        status: parts.status.as_u16(),
        input: Clipped::new(input),
        output: Clipped::new(output),
    });
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(percent: f64) -> Capture {
        let dir = std::env::temp_dir();
        let settings = CaptureSettings {
            sample_percent: percent,
            uri: Some(dir.display().to_string()),
            queue: 2,
            ..CaptureSettings::default()
        };
        Capture::new(settings.check().expect("valid").expect("on"))
    }

    #[test]
    fn sampling_follows_the_percent() {
        let draws = 100_000;
        let rate = |c: &Capture| (0..draws).filter(|_| c.sampled()).count();
        assert_eq!(rate(&capture(100.0)), draws);
        let quarter = rate(&capture(25.0));
        // Binomial: σ ≈ 137; 5σ.
        assert!((24_300..=25_700).contains(&quarter), "{quarter}");
        let rare = rate(&capture(0.1));
        assert!((40..=160).contains(&rare), "{rare}");
    }

    #[test]
    fn a_full_queue_drops_without_waiting() {
        let capture = capture(100.0);
        let record = || Captured {
            time: chrono::Utc::now(),
            model: "m".into(),
            model_version: None,
            request_id: String::new(),
            route: "/predict".into(),
            status: 200,
            input: Clipped::new(axum::body::Bytes::from_static(b"{}")),
            output: Clipped::default(),
        };
        for _ in 0..5 {
            capture.offer(record());
        }
        assert_eq!(capture.queue.capacity(), 0, "two queued, three dropped");
        assert_eq!(capture.queued_bytes.load(Ordering::Relaxed), 4, "only the queued ones counted");
    }
}
