//! The models a server holds. Each configured model is a [`ModelSlot`]: a name, the source it is
//! configured to load from, its own poll interval, and the version serving now behind its own
//! atomic swap, so one model's reload never touches another. [`Models`] holds the slots in
//! configuration order and knows which one the unqualified routes (`/predict`, `/model/info`, …)
//! serve.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use retail_model::artifact::Artifact;

use crate::drift::window::{WindowLimits, system_clock};
use crate::drift::{DriftMonitor, DriftSettings};
use crate::scoring::BodyShape;
use crate::{ApiError, ModelSource, metrics, registry, reload};

/// Most models one server holds: every metric labelled by model stays a small, closed set.
pub const MAX_MODELS: usize = 16;

/// A verified model ready to serve, with where it came from.
#[derive(Debug)]
pub struct LoadedModel {
    /// The configured name it serves under (its slot's name).
    pub name: Arc<str>,
    /// The artifact.
    pub artifact: Artifact,
    /// Where it came from.
    pub source: ModelSource,
    /// The registry package it came from, if any.
    pub package: Option<registry::Package>,
    pub(crate) counters: metrics::PredictionCounters,
    /// Its drift window, when the artifact carries a reference.
    pub(crate) drift: Option<DriftMonitor>,
}

/// How one model is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    /// The name routes and metrics use (`/models/{name}/…`, `/v2/models/{name}/…`).
    pub name: String,
    /// Where it loads from.
    pub source: ModelSource,
    /// How often to check the source for a new version (`None`: never).
    pub poll: Option<Duration>,
}

/// One configured model: what it is configured to load and what serves now (possibly nothing
/// yet, or a fallback while its remote source loads).
#[derive(Debug)]
pub struct ModelSlot {
    name: Arc<str>,
    configured: ModelSource,
    poll: Option<Duration>,
    model: ArcSwapOption<LoadedModel>,
    /// The size of the drift windows of the versions it installs.
    drift_window: Arc<WindowLimits>,
}

impl ModelSlot {
    /// A slot with nothing loaded yet.
    pub fn new(config: ModelConfig) -> Self {
        let d = DriftSettings::default();
        Self {
            name: config.name.into(),
            configured: config.source,
            poll: config.poll,
            model: ArcSwapOption::empty(),
            drift_window: Arc::new(WindowLimits::new(d.window_rows, d.window_seconds)),
        }
    }

    /// The name it serves under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source it is configured to load from.
    pub fn configured_source(&self) -> &ModelSource {
        &self.configured
    }

    /// How often its source is checked for a new version.
    pub fn poll(&self) -> Option<Duration> {
        self.poll
    }

    /// The version serving now, if any (a snapshot: keep it for the whole request).
    pub fn model(&self) -> Option<Arc<LoadedModel>> {
        self.model.load_full()
    }

    /// The version serving now, or 503 while none is loaded.
    pub fn serving(&self) -> Result<Arc<LoadedModel>, ApiError> {
        self.model().ok_or(ApiError::NotReady("no model loaded yet"))
    }

    /// Whether a version serves (its configured source's, or a fallback while that loads).
    pub fn is_serving(&self) -> bool {
        self.model.load().is_some()
    }

    /// Starts serving `fetched` (already verified) as loaded from `source`; requests in flight
    /// finish on the old version.
    pub(crate) fn install(&self, fetched: reload::Fetched, source: ModelSource) {
        let reload::Fetched { artifact, package } = fetched;
        let old = self.model();
        metrics::record_model(&self.name, &artifact, &source, old.as_deref().map(|m| (&m.artifact, &m.source)));
        match &old {
            Some(old) => {
                tracing::info!(model = %self.name, from = %old.artifact.manifest.version, to = %artifact.manifest.version, source = %source.location(), "model replaced")
            }
            None => {
                tracing::info!(model = %self.name, version = %artifact.manifest.version, source = %source.location(), "model loaded")
            }
        }
        let counters = metrics::PredictionCounters::new(&self.name, &artifact);
        let drift = artifact.reference.as_ref().map(|reference| {
            let classifier = !crate::scoring::is_regression(&artifact);
            DriftMonitor::new(&self.name, reference, classifier, self.drift_window.clone(), system_clock())
        });
        let name = self.name.clone();
        self.model.store(Some(Arc::new(LoadedModel { name, artifact, source, package, counters, drift })));
    }

    /// Serves `artifact` now, as loaded from `source` (at start-up: the configured artifact, or a
    /// fallback while the configured source loads).
    pub fn serve_now(&self, artifact: Artifact, source: ModelSource) {
        self.install(reload::Fetched { artifact, package: None }, source);
    }
}

/// Why a set of models cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelsError {
    /// No model configured.
    #[error("no model configured")]
    Empty,
    /// More than [`MAX_MODELS`].
    #[error("{0} models configured; at most {MAX_MODELS}")]
    TooMany(usize),
    /// A name that routes and metrics cannot carry.
    #[error("model name {0:?}: use 1 to 64 of a-z, A-Z, 0-9, '-', '_' and '.'")]
    BadName(String),
    /// Two models with one name.
    #[error("model name {0:?} is configured twice")]
    Duplicate(String),
    /// The default names no configured model.
    #[error("DEFAULT_MODEL {0:?} is not one of the configured models ({1})")]
    UnknownDefault(String, String),
}

/// The slots of a server, in configuration order, and the default one.
#[derive(Debug)]
pub struct Models {
    slots: Vec<Arc<ModelSlot>>,
    default: usize,
}

impl Models {
    /// Slots for `configs`; the default is the one named `default`, else the first.
    pub fn new(configs: Vec<ModelConfig>, default: Option<&str>) -> Result<Self, ModelsError> {
        if configs.is_empty() {
            return Err(ModelsError::Empty);
        }
        if configs.len() > MAX_MODELS {
            return Err(ModelsError::TooMany(configs.len()));
        }
        for (i, config) in configs.iter().enumerate() {
            if !valid_name(&config.name) {
                return Err(ModelsError::BadName(config.name.clone()));
            }
            if configs[..i].iter().any(|c| c.name == config.name) {
                return Err(ModelsError::Duplicate(config.name.clone()));
            }
        }
        let default = match default.filter(|d| !d.is_empty()) {
            None => 0,
            Some(name) => configs.iter().position(|c| c.name == name).ok_or_else(|| {
                let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
                ModelsError::UnknownDefault(name.to_owned(), names.join(", "))
            })?,
        };
        Ok(Self { slots: configs.into_iter().map(|c| Arc::new(ModelSlot::new(c))).collect(), default })
    }

    /// The model the unqualified routes serve.
    pub fn default_slot(&self) -> &Arc<ModelSlot> {
        &self.slots[self.default]
    }

    /// The model configured under `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<ModelSlot>> {
        self.slots.iter().find(|s| s.name() == name)
    }

    /// The model configured under `name`, else one whose loaded artifact is named `name` (the
    /// name in its manifest, which clients of a single-model server may use).
    pub fn find(&self, name: &str) -> Option<&Arc<ModelSlot>> {
        self.get(name)
            .or_else(|| self.slots.iter().find(|s| s.model().is_some_and(|m| m.artifact.manifest.name == name)))
    }

    /// The configured model `name`, or 404 naming the ones there are.
    pub fn named(&self, name: &str) -> Result<&Arc<ModelSlot>, ApiError> {
        self.find(name).ok_or_else(|| ApiError::UnknownModel(name.chars().take(64).collect(), self.names().join(", ")))
    }

    /// The model an unqualified route (`/predict`, `/predict/batch`) scores `body` with: the
    /// default, unless the body's keys are of another shape ([`crate::scoring::shape`]) and
    /// exactly one loaded model reads that shape.
    pub fn for_body(&self, body: &[u8]) -> &Arc<ModelSlot> {
        let default = self.default_slot();
        if self.slots.len() == 1 {
            return default;
        }
        let default_shape = default.model().map(|m| BodyShape::of(m.artifact.kind()));
        if !crate::scoring::may_be_other_shape(body, default_shape) {
            return default;
        }
        match crate::scoring::shape(body) {
            Some(shape) if Some(shape) != default_shape => {
                let mut of_shape = self.loaded_of(shape);
                match (of_shape.next(), of_shape.next()) {
                    (Some(one), None) => one,
                    _ => default,
                }
            }
            _ => default,
        }
    }

    /// The slots whose loaded model reads bodies of `shape`.
    fn loaded_of(&self, shape: BodyShape) -> impl Iterator<Item = &Arc<ModelSlot>> {
        self.slots.iter().filter(move |s| s.model().is_some_and(|m| BodyShape::of(m.artifact.kind()) == shape))
    }

    /// The tabular model `/predict-single` serves: the one `name` names (`?model=`), else the
    /// default if it is tabular, else the one loaded tabular model. 404 when there is none, 422
    /// asking for `?model=` when there are several, 422 when `name` is not a tabular model.
    pub fn tabular(&self, name: Option<&str>) -> Result<&Arc<ModelSlot>, ApiError> {
        let is_tabular =
            |slot: &ModelSlot| slot.model().is_some_and(|m| BodyShape::of(m.artifact.kind()) == BodyShape::Tabular);
        let refuse = |reason: String| {
            let mut errors = crate::scoring::FieldErrors::default();
            errors.field("model", || reason);
            ApiError::Invalid(errors)
        };
        if let Some(name) = name {
            let slot = self.named(name)?;
            return match slot.model() {
                Some(m) if !is_tabular(slot) => Err(refuse(format!(
                    "model {:?} is a {}; /predict-single serves tabular models",
                    slot.name(),
                    m.artifact.kind().as_str()
                ))),
                _ => Ok(slot),
            };
        }
        if is_tabular(self.default_slot()) {
            return Ok(self.default_slot());
        }
        let tabular: Vec<&Arc<ModelSlot>> = self.loaded_of(BodyShape::Tabular).collect();
        match tabular[..] {
            [one] => Ok(one),
            [] => Err(ApiError::NoTabularModel(self.names().join(", "))),
            _ => {
                let names: Vec<&str> = tabular.iter().map(|s| s.name()).collect();
                Err(refuse(format!("several tabular models are served ({}): name one with ?model=", names.join(", "))))
            }
        }
    }

    /// All slots, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<ModelSlot>> {
        self.slots.iter()
    }

    /// The configured names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.slots.iter().map(|s| s.name()).collect()
    }

    /// Sizes the drift windows of every model (those installed already too).
    pub fn set_drift_window(&self, settings: &DriftSettings) {
        for slot in &self.slots {
            slot.drift_window.set(settings.window_rows, settings.window_seconds);
        }
    }

    /// Whether every configured model has a version serving.
    pub fn all_serving(&self) -> bool {
        self.slots.iter().all(|s| s.is_serving())
    }
}

/// A name safe in paths, metric labels and logs.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use retail_model::artifact::ModelKind;

    use super::*;

    fn config(name: &str) -> ModelConfig {
        ModelConfig { name: name.to_owned(), source: ModelSource::Embedded(ModelKind::BasketClassifier), poll: None }
    }

    #[test]
    fn names_are_checked_and_the_default_is_found() {
        let models = Models::new(vec![config("a"), config("b")], Some("b")).expect("models");
        assert_eq!(models.default_slot().name(), "b");
        assert_eq!(models.names(), ["a", "b"]);
        assert!(models.get("c").is_none());
        assert_eq!(Models::new(vec![config("a")], None).expect("one").default_slot().name(), "a");
        assert_eq!(Models::new(vec![], None).err(), Some(ModelsError::Empty));
        assert_eq!(Models::new(vec![config("a"), config("a")], None).err(), Some(ModelsError::Duplicate("a".into())));
        assert_eq!(Models::new(vec![config("a b")], None).err(), Some(ModelsError::BadName("a b".into())));
        assert_eq!(Models::new(vec![config("")], None).err(), Some(ModelsError::BadName(String::new())));
        assert!(matches!(Models::new(vec![config("a")], Some("x")), Err(ModelsError::UnknownDefault(..))));
        let many = (0..=MAX_MODELS).map(|i| config(&format!("m{i}"))).collect();
        assert_eq!(Models::new(many, None).err(), Some(ModelsError::TooMany(MAX_MODELS + 1)));
    }

    #[test]
    fn a_slot_serves_a_fallback_under_its_own_name() {
        let models = Models::new(
            vec![ModelConfig { name: "m".into(), source: ModelSource::Local("/nowhere".into()), poll: None }],
            None,
        )
        .expect("models");
        let slot = models.default_slot();
        assert!(!slot.is_serving() && !models.all_serving());
        assert!(matches!(slot.serving(), Err(ApiError::NotReady(_))));
        slot.serve_now(
            Artifact::embedded_default().expect("embedded"),
            ModelSource::Embedded(ModelKind::BasketClassifier),
        );
        assert!(slot.is_serving() && models.all_serving(), "a fallback serves");
        let manifest_name = slot.model().expect("fallback").artifact.manifest.name.clone();
        assert!(Arc::ptr_eq(models.find(&manifest_name).expect("by manifest name"), slot));
        assert_eq!(slot.model().expect("serving").name.as_ref(), "m");
    }
}
