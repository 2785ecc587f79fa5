//! The poller against a scripted source: a transient failure is retried until the version
//! loads, a refused version is not loaded again until its tag changes, a version that changes
//! while it is read is retried; errors are classified by type.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use retail_model::artifact::FileEntry;

use super::*;
use crate::ServerConfig;

/// A scripted load: its result, and the tag the source has once it is over (if that changed).
type Load = (Result<Fetched, LoadError>, Option<String>);

/// A source whose version tag the test sets and whose loads it scripts.
#[derive(Default)]
struct Scripted {
    tag: Mutex<Option<String>>,
    loads: Mutex<VecDeque<Load>>,
    attempts: AtomicUsize,
}

impl Scripted {
    fn set_tag(&self, tag: &str) {
        *self.tag.lock().expect("lock") = Some(tag.to_owned());
    }

    fn script(&self, result: Result<Fetched, LoadError>, tag_after: Option<&str>) {
        self.loads.lock().expect("lock").push_back((result, tag_after.map(str::to_owned)));
    }
}

impl Source for Scripted {
    async fn version_tag(&self) -> Result<Option<String>, LoadError> {
        Ok(self.tag.lock().expect("lock").clone())
    }

    async fn load(&self) -> Result<Fetched, LoadError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let (result, tag_after) = self.loads.lock().expect("lock").pop_front().expect("a scripted load");
        if let Some(tag) = tag_after {
            *self.tag.lock().expect("lock") = Some(tag);
        }
        result
    }
}

/// The embedded model under another version name (and file list, so it counts as different).
fn version(name: &str) -> Fetched {
    let mut artifact = Artifact::embedded_default().expect("embedded model");
    artifact.manifest.version = name.to_owned();
    artifact.manifest.files.insert(format!("{name}.txt"), FileEntry { sha256: String::new(), bytes: 0 });
    Fetched { artifact, package: None }
}

fn serving(state: &AppState) -> String {
    state.model().expect("a model serves").artifact.manifest.version.clone()
}

/// A state serving `v1` from a local source, and a poller that has settled tag `t1`.
fn serving_v1() -> (AppState, Poller<Scripted>) {
    let source = ModelSource::Local("m".to_owned());
    let state = AppState::new(version("v1").artifact, source, ServerConfig::default());
    let mut poller = Poller::new(Scripted::default(), state.models().default_slot().clone());
    poller.source.set_tag("t1");
    poller.settled = Some(Some("t1".to_owned()));
    (state, poller)
}

#[tokio::test]
async fn a_transient_failure_on_a_new_version_is_retried_until_it_loads() {
    let (state, mut poller) = serving_v1();
    assert_eq!(poller.check().await, Outcome::Unchanged);
    poller.source.set_tag("t2");
    poller.source.script(Err(LoadError::Unavailable("store unreachable".to_owned())), None);
    poller.source.script(Err(LoadError::Unavailable("S3 503".to_owned())), None);
    poller.source.script(Ok(version("v2")), None);
    assert_eq!(poller.check().await, Outcome::Unavailable);
    assert_eq!(serving(&state), "v1", "the serving model stays");
    assert_eq!(poller.check().await, Outcome::Unavailable, "same tag, tried again");
    assert_eq!(poller.check().await, Outcome::Loaded);
    assert_eq!(serving(&state), "v2");
    assert_eq!(poller.check().await, Outcome::Unchanged);
    assert_eq!(poller.source.attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refused_version_is_not_loaded_again_until_its_tag_changes() {
    let (state, mut poller) = serving_v1();
    poller.source.set_tag("t2");
    poller.source.script(Err(LoadError::Refused("model.json: sha256 differs".to_owned())), None);
    assert_eq!(poller.check().await, Outcome::Refused);
    for _ in 0..3 {
        assert_eq!(poller.check().await, Outcome::Unchanged);
    }
    assert_eq!(poller.source.attempts.load(Ordering::SeqCst), 1, "refused once, not reloaded");
    assert_eq!(serving(&state), "v1");
    poller.source.set_tag("t3");
    poller.source.script(Ok(version("v3")), None);
    assert_eq!(poller.check().await, Outcome::Loaded);
    assert_eq!(serving(&state), "v3");
}

#[tokio::test]
async fn a_version_that_changes_while_it_is_read_is_retried_not_refused() {
    let (state, mut poller) = serving_v1();
    poller.source.set_tag("t2");
    // Half copied when read, complete (t3) by the time the load is over.
    poller.source.script(Err(LoadError::Refused("model.json: size differs".to_owned())), Some("t3"));
    poller.source.script(Ok(version("v3")), None);
    assert_eq!(poller.check().await, Outcome::Unavailable);
    assert_eq!(poller.check().await, Outcome::Loaded);
    assert_eq!(serving(&state), "v3");
}

#[test]
fn errors_are_classified_by_type_not_by_message() {
    let unavailable = |e: LoadError| matches!(e, LoadError::Unavailable(_));
    let io = || ArtifactError::Io { path: "m".into(), source: std::io::ErrorKind::NotFound.into() };
    let checksum = || ArtifactError::Checksum { file: "model.json".into(), expected: "a".into(), actual: "b".into() };
    assert!(unavailable(io().into()));
    assert!(unavailable(ArtifactError::Changed { file: "model.json".into(), expected: 1 }.into()));
    assert!(!unavailable(checksum().into()));
    let (bucket, key) = (String::from("b"), String::from("k"));
    assert!(unavailable(StoreError::S3 { bucket: bucket.clone(), key: key.clone(), reason: "503".into() }.into()));
    assert!(!unavailable(StoreError::TooLarge { bucket: bucket.clone(), key: key.clone(), size: 2, limit: 1 }.into()));
    assert!(!unavailable(StoreError::Artifact { bucket: bucket.clone(), key: key.clone(), source: checksum() }.into()));
    assert!(unavailable(StoreError::Artifact { bucket, key, source: io() }.into()));
    assert!(unavailable(RegistryError::Http { operation: "ListModelPackages", reason: "timeout".into() }.into()));
    assert!(!unavailable(RegistryError::Unusable { arn: "a".into(), reason: "no ModelDataUrl".into() }.into()));
}

#[tokio::test]
async fn backoff_doubles_up_to_its_cap_and_resets() {
    let mut backoff = Backoff::new();
    assert!(backoff.is_due());
    let waits: Vec<Duration> = (0..10).map(|_| backoff.failed()).collect();
    assert_eq!(waits[..3], [FIRST_BACKOFF, FIRST_BACKOFF * 2, FIRST_BACKOFF * 4]);
    assert_eq!(waits[9], MAX_BACKOFF);
    assert!(!backoff.is_due());
    backoff.reset();
    assert!(backoff.is_due());
}

#[tokio::test]
async fn the_configured_source_replaces_a_fallback_even_with_the_same_files() {
    let configured = ModelSource::S3(crate::store::S3Url { bucket: "b".into(), key: "k".into() });
    let state = AppState::starting(configured.clone(), ServerConfig::default(), Some(version("v1").artifact));
    let mut poller = Poller::new(Scripted::default(), state.models().default_slot().clone());
    poller.source.set_tag("etag");
    poller.source.script(Ok(version("v1")), None);
    assert_eq!(poller.check().await, Outcome::Loaded);
    assert_eq!(state.model().expect("serving").source, configured, "no longer the fallback");
}
