//! Loading and hot reload. At start-up a remote source is loaded with capped exponential
//! backoff; with `MODEL_POLL_SECONDS` the server then polls its source — a local directory or
//! `.tar.gz` by file sizes and times, an S3 object by ETag, a registry group by its newest
//! approved version — and when that changes, loads and verifies the new artifact, then swaps it
//! in.
//!
//! A failed load is one of two kinds ([`LoadError`]). A version that cannot be read *now* (store
//! unreachable, network error, S3 5xx, a file missing or changing while read) is
//! `unavailable`: it is tried again with capped exponential backoff until it loads. A version
//! that was read and fails verification (checksum, parse, limits) is `refused` for good: logged,
//! counted, and not tried again until the source's version tag changes. Either way the model
//! that is serving keeps serving.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use retail_model::artifact::{Artifact, ArtifactError, ModelKind};

use crate::registry::{Package, Registry, RegistryError};
use crate::store::{S3Source, StoreError};
use crate::{AppState, ModelSlot, ModelSource, metrics};

/// First wait before an unavailable source is tried again; it doubles on each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

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

/// Why a version could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// It could not be read now (store unreachable, network error, 5xx, a file missing or
    /// changing while read): try again, with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// It was read and fails verification (checksum, parse, limits): refused until the source
    /// changes.
    #[error("{0}")]
    Refused(String),
}

impl From<ArtifactError> for LoadError {
    fn from(error: ArtifactError) -> Self {
        if error.is_transient() { Self::Unavailable(error.to_string()) } else { Self::Refused(error.to_string()) }
    }
}

impl From<StoreError> for LoadError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::S3 { .. } => Self::Unavailable(error.to_string()),
            StoreError::TooLarge { .. } | StoreError::Loader { .. } => Self::Refused(error.to_string()),
            StoreError::Artifact { ref source, .. } if source.is_transient() => Self::Unavailable(error.to_string()),
            StoreError::Artifact { .. } => Self::Refused(error.to_string()),
        }
    }
}

impl From<RegistryError> for LoadError {
    fn from(error: RegistryError) -> Self {
        match error {
            RegistryError::Unusable { .. } => Self::Refused(error.to_string()),
            RegistryError::Config(_)
            | RegistryError::Http { .. }
            | RegistryError::Api { .. }
            | RegistryError::NotFound { .. } => Self::Unavailable(error.to_string()),
        }
    }
}

/// Something the poller can check for a new version and load.
trait Source: Send + Sync {
    /// What changes when a new version is published (`None` when the source cannot say).
    fn version_tag(&self) -> impl Future<Output = Result<Option<String>, LoadError>> + Send;

    /// Loads and verifies the current version.
    fn load(&self) -> impl Future<Output = Result<Fetched, LoadError>> + Send;
}

/// A configured source, ready to be checked for changes and loaded.
enum Watched {
    Embedded(ModelKind),
    Local(PathBuf),
    S3(S3Source),
    Registry { registry: Registry, group: String },
}

impl Watched {
    fn new(source: &ModelSource) -> Result<Self, String> {
        Ok(match source {
            ModelSource::Embedded(kind) => Self::Embedded(*kind),
            ModelSource::Local(path) => Self::Local(PathBuf::from(path)),
            ModelSource::S3(url) => Self::S3(S3Source::at(url).map_err(|e| e.to_string())?),
            ModelSource::Registry { group } => {
                Self::Registry { registry: Registry::from_env().map_err(|e| e.to_string())?, group: group.clone() }
            }
        })
    }
}

impl Source for Watched {
    /// File sizes and times, the ETag, the ARN of the newest approved package.
    async fn version_tag(&self) -> Result<Option<String>, LoadError> {
        Ok(match self {
            Self::Embedded(_) => None,
            Self::Local(path) => fingerprint(path),
            Self::S3(s3) => s3.etag().await?,
            Self::Registry { registry, group } => Some(registry.latest_approved(group).await?.model_package_arn),
        })
    }

    async fn load(&self) -> Result<Fetched, LoadError> {
        let artifact = match self {
            Self::Embedded(kind) => Artifact::embedded(*kind)?,
            Self::Local(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Artifact::load(&path))
                    .await
                    .map_err(|e| LoadError::Refused(format!("the loader stopped: {e}")))??
            }
            Self::S3(s3) => s3.fetch().await?.0,
            Self::Registry { registry, group } => return load_package(registry, group).await,
        };
        Ok(Fetched { artifact, package: None })
    }
}

/// The newest approved package of `group`: its artifact, verified, and what the registry says.
async fn load_package(registry: &Registry, group: &str) -> Result<Fetched, LoadError> {
    let latest = registry.latest_approved(group).await?;
    let mut package = registry.describe(group, &latest.model_package_arn).await?;
    let url = package.model_data()?;
    let artifact = S3Source::at(&url)?.fetch().await?.0;
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

/// What one check of the source did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The version is the one already settled: nothing to do.
    Unchanged,
    /// A version was loaded (and swapped in, unless it is the one serving).
    Loaded,
    /// The version fails verification; it is not tried again until the source changes.
    Refused,
    /// The source could not be read; try again after a backoff.
    Unavailable,
}

/// Checks a model's source and loads new versions into its slot: remembers which version tag it
/// settled (loaded or refused) and whether the last load failed transiently (then the same tag
/// is tried again).
struct Poller<S> {
    source: S,
    slot: Arc<ModelSlot>,
    settled: Option<Option<String>>,
    retry: bool,
}

impl<S: Source> Poller<S> {
    fn new(source: S, slot: Arc<ModelSlot>) -> Self {
        Self { source, slot, settled: None, retry: false }
    }

    /// Checks the source once: loads its version unless that version is already settled, and
    /// swaps it in, or records why not.
    async fn check(&mut self) -> Outcome {
        let tag = match self.source.version_tag().await {
            Ok(tag) => tag,
            Err(error) => return self.unavailable(&error, "cannot check the model source"),
        };
        if self.settled.as_ref() == Some(&tag) && !self.retry {
            return Outcome::Unchanged;
        }
        match self.source.load().await {
            Ok(fetched) => {
                install(&self.slot, fetched);
                self.settle(tag);
                Outcome::Loaded
            }
            Err(error @ LoadError::Unavailable(_)) => self.unavailable(&error, "cannot load the model yet"),
            Err(error @ LoadError::Refused(_)) => {
                // A source that changed while it was read (a copy in progress) may well verify
                // once the change is complete: that is worth retrying, not refusing.
                if self.source.version_tag().await.ok().as_ref() != Some(&tag) {
                    return self.unavailable(&error, "the model source changed while it was read");
                }
                let serving = self.slot.model();
                let serving = serving.as_ref().map_or("none", |m| m.artifact.manifest.version.as_str());
                tracing::warn!(model = self.slot.name(), %error, serving, "model refused until its source changes; the serving one stays");
                metrics::record_reload(self.slot.name(), "refused");
                self.settle(tag);
                Outcome::Refused
            }
        }
    }

    fn settle(&mut self, tag: Option<String>) {
        self.settled = Some(tag);
        self.retry = false;
    }

    fn unavailable(&mut self, error: &LoadError, message: &str) -> Outcome {
        tracing::warn!(model = self.slot.name(), %error, source = %self.slot.configured_source().location(), "{message}; will retry");
        metrics::record_reload(self.slot.name(), "unavailable");
        self.retry = true;
        Outcome::Unavailable
    }
}

/// Swaps in a newly loaded artifact, unless it is the one serving (same source, files and
/// package). Replacing a version of the same source counts as a reload; the first load of the
/// source (at start-up, or over a fallback) does not.
fn install(slot: &ModelSlot, new: Fetched) {
    let source = slot.configured_source();
    let serving = slot.model();
    let reload = serving.as_ref().is_some_and(|m| m.source == *source);
    let same = reload
        && serving.as_ref().is_some_and(|m| {
            m.artifact.manifest.files == new.artifact.manifest.files
                && m.package.as_ref().map(|p| &p.arn) == new.package.as_ref().map(|p| &p.arn)
        });
    if !same {
        slot.install(new, source.clone());
        if reload {
            metrics::record_reload(slot.name(), "loaded");
        }
    }
}

/// Capped exponential backoff: when the next attempt is due.
#[derive(Debug)]
struct Backoff {
    delay: Duration,
    due: Option<tokio::time::Instant>,
}

impl Backoff {
    fn new() -> Self {
        Self { delay: FIRST_BACKOFF, due: None }
    }

    fn is_due(&self) -> bool {
        self.due.is_none_or(|due| tokio::time::Instant::now() >= due)
    }

    /// After a failure: the next attempt waits the current delay, which then doubles (capped).
    fn failed(&mut self) -> Duration {
        let wait = self.delay;
        self.due = Some(tokio::time::Instant::now() + wait);
        self.delay = (self.delay * 2).min(MAX_BACKOFF);
        wait
    }

    fn reset(&mut self) {
        *self = Self::new();
    }
}

/// Loads a model's configured source (unless it serves already) with capped exponential
/// backoff, then, when it has a poll interval, watches it for new versions.
pub async fn load_then_watch(state: Arc<AppState>, slot: Arc<ModelSlot>) {
    let source = slot.configured_source().clone();
    let pending = slot.model().is_none_or(|m| m.source != source);
    let watched = match Watched::new(&source) {
        Ok(watched) => watched,
        Err(error) => {
            tracing::error!(model = slot.name(), %error, source = %source.location(), "cannot use the model source");
            return;
        }
    };
    let embedded = matches!(watched, Watched::Embedded(_));
    let every = slot.poll();
    let mut poller = Poller::new(watched, slot);
    if pending {
        if !load_with_backoff(&state, &mut poller).await {
            return;
        }
    } else {
        // Already serving this source's current version (loaded at start-up).
        poller.settled = poller.source.version_tag().await.ok();
    }
    let Some(every) = every else { return };
    if embedded {
        tracing::warn!(model = poller.slot.name(), "a poll interval is set but the embedded model cannot change");
        return;
    }
    watch(&state, &mut poller, every).await;
}

/// Tries to load the source until a version verifies or the server drains (then `false`).
/// Meanwhile the server is live, and ready only if a fallback model serves. A refused version
/// is not loaded again: the source is checked for a new one at the same backoff.
async fn load_with_backoff<S: Source>(state: &AppState, poller: &mut Poller<S>) -> bool {
    let mut backoff = Backoff::new();
    loop {
        if state.is_draining() {
            return false;
        }
        if poller.check().await == Outcome::Loaded {
            return true;
        }
        tokio::time::sleep(backoff.failed()).await;
    }
}

/// Polls the source every `every` until the server drains; a new version is loaded, verified
/// and swapped in. After an unavailable source, checks wait for the backoff.
async fn watch<S: Source>(state: &AppState, poller: &mut Poller<S>, every: Duration) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tracing::info!(model = poller.slot.name(), source = %poller.slot.configured_source().location(), every_seconds = every.as_secs_f64(), "watching the model source");
    let mut backoff = Backoff::new();
    loop {
        ticker.tick().await;
        if state.is_draining() {
            return;
        }
        if !backoff.is_due() {
            continue;
        }
        match poller.check().await {
            Outcome::Unavailable => {
                backoff.failed();
            }
            Outcome::Unchanged | Outcome::Loaded | Outcome::Refused => backoff.reset(),
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

#[cfg(test)]
mod tests;
