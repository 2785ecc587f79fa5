//! The background writer: drains the capture queue, batches records into JSON Lines and writes
//! one file (local directory) or object (S3) per model and hour at each flush — every
//! `flush_records` records or every `flush_interval`, and once more at shutdown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use tokio::sync::{mpsc, oneshot};

use super::config::{CaptureConfig, CaptureTarget};
use super::record::{Captured, object_name};
use crate::store::S3Source;

/// Most one write-failure warning per this interval (the others are counted in it).
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Where batches go.
enum Sink {
    Dir(PathBuf),
    S3 { client: S3Source, prefix: String },
}

impl Sink {
    fn new(target: &CaptureTarget) -> Result<Self, String> {
        match target {
            CaptureTarget::Dir(dir) => Ok(Self::Dir(dir.clone())),
            CaptureTarget::S3 { bucket, prefix } => {
                let client = S3Source::new(bucket, prefix).map_err(|e| e.to_string())?;
                Ok(Self::S3 { client, prefix: prefix.clone() })
            }
        }
    }

    /// Writes `content` as `name` (relative to the directory or prefix). A local file is written
    /// under a temporary name and renamed, so readers never see part of it.
    async fn write(&self, name: String, content: Vec<u8>) -> Result<(), String> {
        match self {
            Self::Dir(dir) => {
                let path = dir.join(name);
                let write = move || {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    let partial = path.with_extension("jsonl.partial");
                    std::fs::write(&partial, content)?;
                    std::fs::rename(&partial, &path)
                };
                match tokio::task::spawn_blocking(write).await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
            Self::S3 { client, prefix } => {
                let key = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
                client.sibling(&key).put(content).await.map_err(|e| e.to_string())
            }
        }
    }
}

/// The running writer: stop it with [`Writer::finish`].
#[derive(Debug)]
pub struct Writer {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    /// Starts draining `queue`; `queued` is the byte count of records in the queue.
    pub(super) fn start(
        config: &CaptureConfig,
        queue: mpsc::Receiver<Captured>,
        queued: Arc<AtomicUsize>,
    ) -> Result<Self, String> {
        let sink = Sink::new(&config.target)?;
        let (stop, stopped) = oneshot::channel();
        let batcher = Batcher { sink, instance: instance(), seq: 0, failures: Failures::default() };
        let task = tokio::spawn(batcher.run(queue, queued, (config.flush_records, config.flush_interval), stopped));
        Ok(Self { stop, task })
    }

    /// Writes what is queued and stops, waiting at most `timeout`.
    pub async fn finish(self, timeout: Duration) {
        let _ = self.stop.send(());
        if tokio::time::timeout(timeout, self.task).await.is_err() {
            tracing::warn!(timeout_seconds = timeout.as_secs_f64(), "payload capture: queued records not all written");
        }
    }
}

/// This process's name in capture file names: `HOSTNAME` (a pod's name), else its process id.
fn instance() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| format!("pid{}", std::process::id()))
}

/// Write failures since the last warning.
#[derive(Default)]
struct Failures {
    last_warning: Option<Instant>,
    unreported: u64,
}

impl Failures {
    fn record(&mut self, records: usize, error: &str) {
        metrics::counter!("retail_api_capture_dropped_total", "reason" => "write_failed").increment(records as u64);
        self.unreported += records as u64;
        if self.last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            tracing::warn!(records_dropped = self.unreported, %error, "payload capture: write failed");
            self.last_warning = Some(Instant::now());
            self.unreported = 0;
        }
    }
}

struct Batcher {
    sink: Sink,
    instance: String,
    seq: u64,
    failures: Failures,
}

impl Batcher {
    async fn run(
        mut self,
        mut queue: mpsc::Receiver<Captured>,
        queued: Arc<AtomicUsize>,
        (flush_records, flush_interval): (usize, Duration),
        mut stopped: oneshot::Receiver<()>,
    ) {
        let mut batch = Vec::with_capacity(flush_records);
        let mut ticker = tokio::time::interval(flush_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let room = flush_records.saturating_sub(batch.len()).max(1);
            tokio::select! {
                received = queue.recv_many(&mut batch, room) => {
                    if received == 0 {
                        break;
                    }
                    if batch.len() >= flush_records {
                        self.flush(&mut batch, &queued).await;
                    }
                }
                _ = ticker.tick() => self.flush(&mut batch, &queued).await,
                _ = &mut stopped => {
                    while let Ok(record) = queue.try_recv() {
                        batch.push(record);
                        if batch.len() >= flush_records {
                            self.flush(&mut batch, &queued).await;
                        }
                    }
                    break;
                }
            }
        }
        self.flush(&mut batch, &queued).await;
    }

    /// Writes `batch` (emptied): one file per model and hour.
    async fn flush(&mut self, batch: &mut Vec<Captured>, queued: &AtomicUsize) {
        if batch.is_empty() {
            return;
        }
        let mut groups: BTreeMap<(String, DateTime<Utc>), (Vec<u8>, usize)> = BTreeMap::new();
        for record in batch.drain(..) {
            queued.fetch_sub(record.size(), Ordering::Relaxed);
            let hour = record.time.duration_trunc(TimeDelta::hours(1)).unwrap_or(record.time);
            let (content, records) = groups.entry((record.model.clone(), hour)).or_default();
            content.extend(record.to_line());
            *records += 1;
        }
        let written_ms = Utc::now().timestamp_millis();
        for ((model, hour), (content, records)) in groups {
            let name = object_name(&model, hour, &self.instance, written_ms, self.seq);
            self.seq += 1;
            match self.sink.write(name, content).await {
                Ok(()) => metrics::counter!("retail_api_capture_records_total").increment(records as u64),
                Err(error) => self.failures.record(records, &error),
            }
        }
    }
}
