//! Loading and hot reload. At start-up a remote source is loaded with capped exponential
//! backoff; with `MODEL_POLL_SECONDS` the server then polls its source — a local directory or
//! `.tar.gz` by file sizes and times, an S3 object by ETag, a registry group by its newest
//! approved version — and when that changes, loads and verifies the new artifact, then swaps it
//! in. A version that fails verification (a half-written copy, a tampered file) is refused,
//! logged and counted; the current model keeps serving and the next change is tried again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use retail_model::artifact::Artifact;

use crate::registry::{Package, Registry};
use crate::store::S3Source;
use crate::{AppState, ModelSource, metrics};

/// Longest wait between attempts to load an unavailable source.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Largest model-quality statistics document read from the registry's S3 reference.
const MAX_STATISTICS_BYTES: u64 = 1024 * 1024;

/// A verified artifact and, from a registry, the package it came from.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub artifact: Artifact,
    pub package: Option<Package>,
}

/// A configured source, ready to be checked for changes and loaded.
enum Watched {
    Embedded,
    Local(PathBuf),
    S3(S3Source),
    Registry { registry: Registry, group: String },
}

impl Watched {
    fn new(source: &ModelSource) -> Result<Self, String> {
        Ok(match source {
            ModelSource::Embedded => Self::Embedded,
            ModelSource::Local(path) => Self::Local(PathBuf::from(path)),
            ModelSource::S3(url) => Self::S3(S3Source::at(url).map_err(|e| e.to_string())?),
            ModelSource::Registry { group } => {
                Self::Registry { registry: Registry::from_env().map_err(|e| e.to_string())?, group: group.clone() }
            }
        })
    }

    /// What changes when a new version is published: file sizes and times, the ETag, the ARN
    /// of the newest approved package.
    async fn version_tag(&self) -> Result<Option<String>, String> {
        match self {
            Self::Embedded => Ok(None),
            Self::Local(path) => Ok(fingerprint(path)),
            Self::S3(s3) => s3.etag().await.map_err(|e| e.to_string()),
            Self::Registry { registry, group } => {
                registry.latest_approved(group).await.map(|p| Some(p.model_package_arn)).map_err(|e| e.to_string())
            }
        }
    }

    /// Loads and verifies the current version.
    async fn load(&self) -> Result<Fetched, String> {
        let artifact = match self {
            Self::Embedded => Artifact::embedded_default().map_err(|e| e.to_string())?,
            Self::Local(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Artifact::load(&path))
                    .await
                    .map_err(|e| format!("loader failed: {e}"))?
                    .map_err(|e| e.to_string())?
            }
            Self::S3(s3) => s3.fetch().await.map_err(|e| e.to_string())?.0,
            Self::Registry { registry, group } => return load_package(registry, group).await,
        };
        Ok(Fetched { artifact, package: None })
    }
}

/// The newest approved package of `group`: its artifact, verified, and what the registry says.
async fn load_package(registry: &Registry, group: &str) -> Result<Fetched, String> {
    let latest = registry.latest_approved(group).await.map_err(|e| e.to_string())?;
    let mut package = registry.describe(group, &latest.model_package_arn).await.map_err(|e| e.to_string())?;
    let url = package.model_data().map_err(|e| e.to_string())?;
    let artifact = S3Source::at(&url).map_err(|e| e.to_string())?.fetch().await.map_err(|e| e.to_string())?.0;
    if let Some(url) = package.model_quality_url() {
        let document = match S3Source::at(&url) {
            Ok(s3) => s3.bytes(MAX_STATISTICS_BYTES).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match document.and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| format!("{url}: {e}"))) {
            Ok(value) => package.model_quality = Some(value),
            Err(error) => tracing::warn!(%error, "cannot read the package's model-quality statistics"),
        }
    }
    Ok(Fetched { artifact, package: Some(package) })
}

/// Loads the configured source (when `pending`) with capped exponential backoff, then, when
/// `MODEL_POLL_SECONDS` is set, watches it for new versions.
pub async fn load_then_watch(state: Arc<AppState>, pending: bool) {
    let source = state.configured_source().clone();
    let watched = match Watched::new(&source) {
        Ok(watched) => watched,
        Err(error) => {
            tracing::error!(%error, source = %source.location(), "cannot use the model source");
            return;
        }
    };
    if pending && !load_with_backoff(&state, &source, &watched).await {
        return;
    }
    let Some(every) = state.config.model_poll else { return };
    if let Watched::Embedded = watched {
        tracing::warn!("MODEL_POLL_SECONDS is set but the embedded model cannot change");
        return;
    }
    watch(state, source, watched, every).await;
}

/// Tries to load `source` until it verifies or the server drains (then `false`). Meanwhile the
/// server is live, and ready only if a fallback model serves.
async fn load_with_backoff(state: &AppState, source: &ModelSource, watched: &Watched) -> bool {
    let mut delay = Duration::from_millis(250);
    loop {
        if state.is_draining() {
            return false;
        }
        match watched.load().await {
            Ok(fetched) => {
                state.install_model(fetched, source.clone());
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

/// What identifies the state of a source on disk: name, size and modification time of each file.
fn fingerprint(path: &std::path::Path) -> Option<String> {
    let entry = |p: &std::path::Path| {
        let meta = std::fs::metadata(p).ok()?;
        Some((p.file_name()?.to_string_lossy().into_owned(), meta.len(), meta.modified().ok()?))
    };
    let mut files: Vec<_> = if path.is_dir() {
        std::fs::read_dir(path).ok()?.filter_map(|e| entry(&e.ok()?.path())).collect()
    } else {
        vec![entry(path)?]
    };
    files.sort();
    Some(format!("{files:?}"))
}

/// Polls the source every `every` until the server drains; a changed version tag means a new
/// version to load, verify and swap in.
async fn watch(state: Arc<AppState>, source: ModelSource, watched: Watched, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut seen = watched.version_tag().await.ok().flatten();
    tracing::info!(source = %source.location(), every_seconds = every.as_secs_f64(), "watching the model source");
    loop {
        ticker.tick().await;
        if state.is_draining() {
            return;
        }
        let current = match watched.version_tag().await {
            Ok(tag) => tag,
            Err(error) => {
                tracing::warn!(%error, "cannot check the model source; will retry");
                continue;
            }
        };
        if current == seen {
            continue;
        }
        seen = current;
        consider(&state, watched.load().await, &source);
    }
}

/// Swaps in a newly loaded artifact, or logs and counts why it was refused.
fn consider(state: &AppState, loaded: Result<Fetched, String>, source: &ModelSource) {
    let serving = state.model();
    match loaded {
        Ok(new)
            if serving.as_ref().is_some_and(|m| {
                m.artifact.manifest.files == new.artifact.manifest.files
                    && m.package.as_ref().map(|p| &p.arn) == new.package.as_ref().map(|p| &p.arn)
            }) => {}
        Ok(new) => {
            state.install_model(new, source.clone());
            metrics::record_reload("loaded");
        }
        Err(error) => {
            let serving = serving.as_ref().map_or("none", |m| m.artifact.manifest.version.as_str());
            tracing::warn!(%error, serving, "new model refused; the current one keeps serving");
            metrics::record_reload("refused");
        }
    }
}
