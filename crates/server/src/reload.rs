//! Hot reload of a local model source (`MODEL_POLL_SECONDS`): the server polls the directory or
//! `.tar.gz` it serves from, and when its files change, loads and verifies the new artifact off
//! the async workers, then swaps it in. A version that fails verification (a half-written copy, a
//! tampered file) is refused, logged and counted; the current model keeps serving and the next
//! change is tried again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use retail_model::artifact::Artifact;

use crate::{AppState, ModelSource, metrics};

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
        let load_path = path.clone();
        let loaded = tokio::task::spawn_blocking(move || Artifact::load(&load_path)).await;
        let serving = state.model();
        match loaded {
            Ok(Ok(artifact)) if artifact.manifest.files == serving.artifact.manifest.files => {}
            Ok(Ok(artifact)) => {
                state.replace_model(artifact, ModelSource::Local(path.display().to_string()));
                metrics::record_reload("loaded");
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, serving = %serving.artifact.manifest.version, "new model refused; the current one keeps serving");
                metrics::record_reload("refused");
            }
            Err(error) => {
                tracing::error!(%error, "model loader failed");
                metrics::record_reload("refused");
            }
        }
    }
}
