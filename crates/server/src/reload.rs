//! Hot reload (`MODEL_POLL_SECONDS`): the server polls its source (a local directory or
//! `.tar.gz` by file sizes and times, an S3 object by ETag), and when it changes, loads and
//! verifies the new artifact, then swaps it in. A version that fails verification (a half-written copy, a
//! tampered file) is refused, logged and counted; the current model keeps serving and the next
//! change is tried again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use retail_model::artifact::Artifact;

use crate::store::S3Source;
use crate::{AppState, ModelSource, metrics};

/// Longest wait between attempts to load an unavailable source.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Loads the configured source (when `pending`) with capped exponential backoff, then, when
/// `MODEL_POLL_SECONDS` is set, watches it for new versions.
pub async fn load_then_watch(state: Arc<AppState>, pending: bool) {
    let source = state.configured_source().clone();
    if pending && !load_with_backoff(&state, &source).await {
        return;
    }
    let Some(every) = state.config.model_poll else { return };
    match source {
        ModelSource::Local(path) => poll_local(state, path.into(), every).await,
        ModelSource::S3 { bucket, key } => poll_s3(state, bucket, key, every).await,
        ModelSource::Embedded => tracing::warn!("MODEL_POLL_SECONDS is set but the embedded model cannot change"),
    }
}

/// Tries to load `source` until it verifies or the server drains (then `false`). Meanwhile the
/// server is live, and ready only if a fallback model serves.
async fn load_with_backoff(state: &AppState, source: &ModelSource) -> bool {
    let mut delay = Duration::from_millis(250);
    loop {
        if state.is_draining() {
            return false;
        }
        let loaded = match source {
            ModelSource::S3 { bucket, key } => match S3Source::new(bucket, key) {
                Ok(s3) => s3.fetch().await.map(|(artifact, _)| artifact).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            ModelSource::Local(path) => load_local(PathBuf::from(path)).await,
            ModelSource::Embedded => Artifact::embedded_default().map_err(|e| e.to_string()),
        };
        match loaded {
            Ok(artifact) => {
                state.install_model(artifact, source.clone());
                return true;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_seconds = delay.as_secs_f64(), source = %source.location(), "cannot load the model yet");
                metrics::record_reload("unavailable");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Loads and verifies a local artifact off the async workers.
async fn load_local(path: PathBuf) -> Result<Artifact, String> {
    tokio::task::spawn_blocking(move || Artifact::load(&path))
        .await
        .map_err(|e| format!("loader failed: {e}"))
        .and_then(|r| r.map_err(|e| e.to_string()))
}

/// What identifies the state of a source on disk: name, size and modification time of each file.
fn fingerprint(path: &Path) -> Option<Vec<(String, u64, std::time::SystemTime)>> {
    let entry = |p: &Path| {
        let meta = std::fs::metadata(p).ok()?;
        Some((p.file_name()?.to_string_lossy().into_owned(), meta.len(), meta.modified().ok()?))
    };
    if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path).ok()?.filter_map(|e| entry(&e.ok()?.path())).collect();
        files.sort();
        Some(files)
    } else {
        entry(path).map(|f| vec![f])
    }
}

/// Polls `path` every `every` until the server drains.
pub async fn poll_local(state: Arc<AppState>, path: PathBuf, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen = fingerprint(&path);
    tracing::info!(path = %path.display(), every_seconds = every.as_secs_f64(), "watching the model source");
    loop {
        ticker.tick().await;
        if state.is_draining() {
            return;
        }
        let current = fingerprint(&path);
        if current == seen {
            continue;
        }
        seen = current;
        let loaded = load_local(path.clone()).await;
        consider(&state, loaded, ModelSource::Local(path.display().to_string()));
    }
}

/// Polls the ETag of `s3://bucket/key` every `every` until the server drains; a new ETag means
/// a new object to download and verify.
pub async fn poll_s3(state: Arc<AppState>, bucket: String, key: String, every: Duration) {
    let source = match S3Source::new(&bucket, &key) {
        Ok(source) => source,
        Err(error) => {
            tracing::error!(%error, "cannot watch the model source");
            return;
        }
    };
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen = source.etag().await.ok().flatten();
    tracing::info!(bucket, key, every_seconds = every.as_secs_f64(), "watching the model source");
    loop {
        ticker.tick().await;
        if state.is_draining() {
            return;
        }
        let current = match source.etag().await {
            Ok(etag) => etag,
            Err(error) => {
                tracing::warn!(%error, "cannot check the model source; will retry");
                continue;
            }
        };
        if current == seen {
            continue;
        }
        seen = current;
        let loaded = source.fetch().await.map(|(artifact, _)| artifact).map_err(|e| e.to_string());
        consider(&state, loaded, ModelSource::S3 { bucket: bucket.clone(), key: key.clone() });
    }
}

/// Swaps in a newly loaded artifact, or logs and counts why it was refused.
fn consider(state: &AppState, loaded: Result<Artifact, String>, source: ModelSource) {
    let serving = state.model();
    match loaded {
        Ok(artifact) if serving.as_ref().is_some_and(|m| m.artifact.manifest.files == artifact.manifest.files) => {}
        Ok(artifact) => {
            state.install_model(artifact, source);
            metrics::record_reload("loaded");
        }
        Err(error) => {
            let serving = serving.as_ref().map_or("none", |m| m.artifact.manifest.version.as_str());
            tracing::warn!(%error, serving, "new model refused; the current one keeps serving");
            metrics::record_reload("refused");
        }
    }
}
