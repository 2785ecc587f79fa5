//! Payload-capture settings of `serve` (flags and environment), checked by
//! [`retail_server::capture::CaptureSettings::check`].

use anyhow::Context;
use clap::Args;
use retail_server::capture::{CaptureConfig, CaptureSettings};

/// Payload capture: a sample of scoring requests and their answers, as JSON Lines files.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// Percent of scoring requests whose body and answer are captured, 0 to 100 (fractions
    /// allowed; 0: off). Needs `--capture-uri`.
    #[arg(long, env = "CAPTURE_SAMPLE_PERCENT", default_value_t = CaptureSettings::default().sample_percent)]
    capture_sample_percent: f64,
    /// Where captured records go: `s3://bucket/prefix`, `file:///directory` or a directory path.
    #[arg(long, env = "CAPTURE_URI")]
    capture_uri: Option<String>,
    /// Records waiting to be written, at most; more are dropped (and counted).
    #[arg(long, env = "CAPTURE_QUEUE", default_value_t = CaptureSettings::default().queue)]
    capture_queue: usize,
    /// Records per capture file or object, at most.
    #[arg(long, env = "CAPTURE_FLUSH_RECORDS", default_value_t = CaptureSettings::default().flush_records)]
    capture_flush_records: usize,
    /// Seconds between writes of the queued records.
    #[arg(long, env = "CAPTURE_FLUSH_SECONDS", default_value_t = CaptureSettings::default().flush_seconds)]
    capture_flush_seconds: f64,
}

impl CaptureArgs {
    /// The checked configuration (`None`: capture off).
    pub fn config(&self) -> anyhow::Result<Option<CaptureConfig>> {
        CaptureSettings {
            sample_percent: self.capture_sample_percent,
            uri: self.capture_uri.clone(),
            queue: self.capture_queue,
            flush_records: self.capture_flush_records,
            flush_seconds: self.capture_flush_seconds,
        }
        .check()
        .context("payload capture")
    }
}
