//! Capture settings (`CAPTURE_SAMPLE_PERCENT`, `CAPTURE_URI`, `CAPTURE_QUEUE`,
//! `CAPTURE_FLUSH_RECORDS`, `CAPTURE_FLUSH_SECONDS`), checked once at start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where captured records are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureTarget {
    /// A local directory (created if missing).
    Dir(PathBuf),
    /// An S3 bucket and a key prefix (without a trailing `/`, possibly empty).
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix.
        prefix: String,
    },
}

impl CaptureTarget {
    /// Parses `s3://bucket[/prefix]`, `file:///dir` or a directory path. A path that exists must
    /// be a directory; one that does not is created.
    pub fn parse(uri: &str) -> Result<Self, CaptureConfigError> {
        let invalid = || CaptureConfigError::Uri(uri.to_owned());
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() || bucket.contains(char::is_whitespace) {
                return Err(invalid());
            }
            return Ok(Self::S3 { bucket: bucket.to_owned(), prefix: prefix.trim_matches('/').to_owned() });
        }
        let path = match uri.strip_prefix("file://") {
            Some(path) => path,
            None if uri.contains("://") => return Err(invalid()),
            None => uri,
        };
        if path.is_empty() {
            return Err(invalid());
        }
        let dir = Path::new(path);
        let unusable = |reason: String| CaptureConfigError::Dir { path: path.to_owned(), reason };
        if dir.exists() && !dir.is_dir() {
            return Err(unusable("exists and is not a directory".to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(|e| unusable(e.to_string()))?;
        Ok(Self::Dir(dir.to_path_buf()))
    }
}

impl std::fmt::Display for CaptureTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(dir) => write!(f, "{}", dir.display()),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// The capture settings as given (environment or flags), before they are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureSettings {
    /// Percent of scoring requests captured, 0 to 100 (0: off).
    pub sample_percent: f64,
    /// `s3://bucket/prefix`, `file:///dir` or a directory path.
    pub uri: Option<String>,
    /// Records waiting to be written, at most (more are dropped).
    pub queue: usize,
    /// Records per written file or object, at most.
    pub flush_records: usize,
    /// Seconds between writes of what is queued.
    pub flush_seconds: f64,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        Self { sample_percent: 0.0, uri: None, queue: 10_000, flush_records: 1_000, flush_seconds: 10.0 }
    }
}

/// Payload capture, when it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// Percent of scoring requests captured, above 0 and at most 100.
    pub sample_percent: f64,
    /// Where records go.
    pub target: CaptureTarget,
    /// Records waiting to be written, at most.
    pub queue: usize,
    /// Records per written file or object, at most.
    pub flush_records: usize,
    /// Longest a record waits in the queue before it is written.
    pub flush_interval: Duration,
}

/// Why the capture settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum CaptureConfigError {
    /// The percent is not within 0 to 100.
    #[error("CAPTURE_SAMPLE_PERCENT must be a number from 0 to 100, got {0}")]
    Percent(f64),
    /// Sampling is on but there is nowhere to write.
    #[error("CAPTURE_SAMPLE_PERCENT={0} needs CAPTURE_URI (s3://bucket/prefix or a local directory)")]
    NoUri(f64),
    /// The URI is neither S3 nor a local directory.
    #[error("CAPTURE_URI {0:?}: expected s3://bucket[/prefix], file:///directory or a directory path")]
    Uri(String),
    /// The local directory cannot be used.
    #[error("CAPTURE_URI {path}: not a usable directory: {reason}")]
    Dir {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A count is zero.
    #[error("CAPTURE_QUEUE and CAPTURE_FLUSH_RECORDS must be positive")]
    Zero,
    /// The flush interval is not a positive number of seconds.
    #[error("CAPTURE_FLUSH_SECONDS must be a positive number of seconds, got {0}")]
    FlushSeconds(f64),
}

impl CaptureSettings {
    /// The checked configuration: `None` when capture is off (percent 0; a URI given is still
    /// checked).
    pub fn check(&self) -> Result<Option<CaptureConfig>, CaptureConfigError> {
        let percent = self.sample_percent;
        if !(0.0..=100.0).contains(&percent) {
            return Err(CaptureConfigError::Percent(percent));
        }
        let uri = self.uri.as_deref().map(str::trim).filter(|u| !u.is_empty());
        let target = uri.map(CaptureTarget::parse).transpose()?;
        if self.queue == 0 || self.flush_records == 0 {
            return Err(CaptureConfigError::Zero);
        }
        let flush_interval = Duration::try_from_secs_f64(self.flush_seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or(CaptureConfigError::FlushSeconds(self.flush_seconds))?;
        match target {
            _ if percent == 0.0 => Ok(None),
            None => Err(CaptureConfigError::NoUri(percent)),
            Some(target) => Ok(Some(CaptureConfig {
                sample_percent: percent,
                target,
                queue: self.queue,
                flush_records: self.flush_records,
                flush_interval,
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(percent: f64, uri: Option<&str>) -> CaptureSettings {
        CaptureSettings { sample_percent: percent, uri: uri.map(str::to_owned), ..CaptureSettings::default() }
    }

    #[test]
    fn targets_are_s3_or_directories() {
        let s3 = CaptureTarget::parse("s3://b/some/prefix/").expect("s3");
        assert_eq!(s3, CaptureTarget::S3 { bucket: "b".into(), prefix: "some/prefix".into() });
        assert_eq!(
            CaptureTarget::parse("s3://b").expect("bucket"),
            CaptureTarget::S3 { bucket: "b".into(), prefix: String::new() }
        );
        for bad in ["s3://", "s3:///p", "gs://b/p", "http://x/y", "", "file://"] {
            assert!(CaptureTarget::parse(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().expect("dir");
        let nested = dir.path().join("a/b");
        let uri = format!("file://{}", nested.display());
        assert_eq!(CaptureTarget::parse(&uri).expect("file"), CaptureTarget::Dir(nested.clone()));
        assert!(nested.is_dir(), "created");
        let file = dir.path().join("f");
        std::fs::write(&file, "x").expect("file");
        assert!(matches!(CaptureTarget::parse(&file.display().to_string()), Err(CaptureConfigError::Dir { .. })));
    }

    #[test]
    fn settings_are_checked() {
        assert_eq!(settings(0.0, None).check().expect("off"), None);
        assert!(matches!(settings(25.0, None).check(), Err(CaptureConfigError::NoUri(_))));
        assert!(matches!(settings(100.5, Some("s3://b")).check(), Err(CaptureConfigError::Percent(_))));
        assert!(matches!(settings(f64::NAN, Some("s3://b")).check(), Err(CaptureConfigError::Percent(_))));
        assert!(matches!(settings(1.0, Some("ftp://b")).check(), Err(CaptureConfigError::Uri(_))));
        let zero = CaptureSettings { queue: 0, ..settings(1.0, Some("s3://b")) };
        assert!(matches!(zero.check(), Err(CaptureConfigError::Zero)));
        let never = CaptureSettings { flush_seconds: 0.0, ..settings(1.0, Some("s3://b")) };
        assert!(matches!(never.check(), Err(CaptureConfigError::FlushSeconds(_))));
        let on = settings(0.5, Some("s3://b/p")).check().expect("valid").expect("on");
        assert_eq!((on.sample_percent, on.queue, on.flush_records), (0.5, 10_000, 1_000));
        assert_eq!(on.flush_interval, Duration::from_secs(10));
    }
}
