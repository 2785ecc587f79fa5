//! Model artifact: a directory (or `.tar.gz` of one) holding `manifest.json` and the files it
//! lists with their sha256. Loading verifies the format version, every checksum and size, the
//! input schema and the ensemble before anything can serve. The trees are either the engine's
//! own `model.json` or an ONNX tree-ensemble classifier (`model.onnx`, format version 2) that is
//! imported into the same engine at load time.
//!
//! An artifact may come from anyone who can write to the model store, so loading one costs
//! bounded memory and time whatever it holds: the limits below are checked from declared sizes
//! (manifest, file metadata, tar headers) before anything is read ([`read`]), model files before
//! they are parsed, and the compiled engine before it is allocated
//! ([`MAX_COMPILED_BYTES`](crate::engine::MAX_COMPILED_BYTES)).

mod load;
mod read;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::drift::Reference;
use crate::engine::Engine;
use crate::explain::{ExplainError, Explainer, Importance};
use crate::features::{FeaturePipeline, InputSchema};
use crate::forecast::SalesStats;
use crate::metrics::{Metrics, RegressionMetrics};
use crate::onnx::InputMapping;
use crate::tabular::TabularSchema;

pub use write::{pack, write_dir};

/// Artifact format version of native models (`model.json`); older builds read it.
pub const FORMAT_VERSION: u32 = 1;
/// Artifact format version of imported ONNX models, the newest this build reads.
pub const ONNX_FORMAT_VERSION: u32 = 2;
/// Name of the ONNX file of an imported model.
pub const ONNX_FILE: &str = "model.onnx";
/// Name of the manifest file at the artifact root.
pub const MANIFEST_FILE: &str = "manifest.json";
/// Name of the ensemble file.
pub const MODEL_FILE: &str = "model.json";
/// Name of a sales forecast's training statistics ([`SalesStats`]), the lookups its features
/// are computed with.
pub const FORECAST_FILE: &str = "forecast.json";
/// File name of the model card (Markdown; its charts are SVG files beside it).
pub const CARD_FILE: &str = "card.md";
/// Largest artifact accepted (the sum of its files' sizes): 128 MiB, twice the model-file limit
/// (the other files are a model card and two small charts). Checked from the sizes the manifest
/// declares, the files' metadata or the tar headers, before their content is read.
pub const MAX_ARTIFACT_BYTES: u64 = 128 * 1024 * 1024;
/// Largest `manifest.json`: 1 MiB (the default model's is 9 KB). Its free-form parts (training
/// parameters) parse into JSON values up to ~16× their text, so it gets a cap of its own.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// Largest model file (`model.json` or the ONNX file): 64 MiB, checked before it is parsed. A
/// `model.json` parses into at most ~5× its size (measured: 335 MB for 64 MiB of leaves); the
/// default one is 0.3 MB, and 1,000 boosting rounds × 3 classes at depth 6 take ~13 MB.
pub const MAX_MODEL_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Most entries of any kind a `.tar.gz` may hold: 1,000 (an artifact has about five files).
pub const MAX_ARCHIVE_ENTRIES: usize = 1_000;
/// Largest GNU long-name / long-link or pax extension header in a `.tar.gz`: 64 KiB. Paths are
/// at most 4 KiB; the rest leaves room for extended attributes that macOS `tar` records.
pub const MAX_TAR_EXTENSION_BYTES: u64 = 64 * 1024;
/// Most bytes a `.tar.gz` may decompress to, and the largest archive downloaded: the artifact
/// limit plus 16 MiB for tar headers, padding and extension headers.
pub const MAX_ARCHIVE_BYTES: u64 = MAX_ARTIFACT_BYTES + 16 * 1024 * 1024;

/// A class the model predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassInfo {
    /// Code, e.g. `MM`.
    pub code: String,
    /// Human label, e.g. `Mid Market`.
    pub label: String,
}

impl ClassInfo {
    /// Every class of the target, in model output order.
    pub fn all() -> Vec<Self> {
        crate::CLASSES.iter().map(|c| Self { code: (*c).to_owned(), label: crate::class_label(c).to_owned() }).collect()
    }
}

/// A file of the artifact and its checksum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Hex sha256 of the content.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// `sha256:<hex>` of the training data file.
    pub data_fingerprint: String,
    /// Training data file name (no directories).
    pub data_file: String,
    /// Transaction lines read.
    pub data_lines: u64,
    /// Labelled baskets used (train + validation + test); absent (0) for a sales forecast.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub baskets: u64,
    /// Sales rows used (train + validation + test) by a sales forecast; absent for a basket
    /// classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Seed of the split, augmentation and training.
    pub seed: u64,
    /// Version of the code that trained it (`retail-model <version> (<git commit>)`).
    pub code_version: String,
    /// Versions of the libraries and toolchain involved.
    pub libraries: BTreeMap<String, String>,
}

impl Provenance {
    /// Where a model made from the data file `data` came from: its name, fingerprint and lines,
    /// the seed, this code's version and toolchain (no basket or row counts yet).
    pub fn of(data: &Path, data_fingerprint: String, data_lines: u64, seed: u64) -> Self {
        Self {
            data_fingerprint,
            data_file: data.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            data_lines,
            baskets: 0,
            rows: None,
            seed,
            code_version: crate::code_version(),
            libraries: BTreeMap::from([
                ("retail-model".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
                ("rustc".to_owned(), crate::rustc_version().to_owned()),
            ]),
        }
    }
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Algorithm and objective.
    pub algorithm: String,
    /// Hyper-parameters as used.
    pub params: serde_json::Value,
    /// Boosting rounds kept (best validation loss).
    pub best_iteration: usize,
    /// Rounds run before early stopping.
    pub rounds_run: usize,
    /// Validation log loss at the best iteration of a classifier; absent for a regression, whose
    /// loss is [`TrainingSummary::validation_loss`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_log_loss: Option<f64>,
    /// The loss early stopping minimised on the validation split (e.g. `poisson_deviance`), when
    /// it is not the log loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_metric: Option<String>,
    /// [`TrainingSummary::validation_metric`] at the best iteration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_loss: Option<f64>,
    /// Rows per split: baskets split by customer, or sales rows split by date.
    pub rows: SplitRows,
    /// Wall-clock training time in seconds (informational, not reproducible).
    pub seconds: f64,
}

/// Row counts of the split: baskets of a customer-level split, or sales rows of a time-based one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRows {
    /// Training baskets (rows).
    pub train: usize,
    /// Early-stopping baskets (rows).
    pub validation: usize,
    /// Held-out baskets (rows) the manifest metrics are computed on.
    pub test: usize,
    /// The days of each split of a time-based split (absent for a customer-level one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<SplitDates>,
}

/// The days each split of a time-based split covers: training first, then validation, then
/// test (the latest days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitDates {
    /// Training days.
    pub train: DateRange,
    /// Early-stopping days.
    pub validation: DateRange,
    /// Held-out days.
    pub test: DateRange,
}

/// Days from `first` to `last`, both included, `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    /// First day.
    pub first: String,
    /// Last day.
    pub last: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_VERSION`] for artifacts this build writes.
    pub format_version: u32,
    /// Model name.
    pub name: String,
    /// Model version (defaults to the first 12 hex digits of the ensemble's sha256).
    pub version: String,
    /// How the trees are stored (absent in native manifests).
    #[serde(default, skip_serializing_if = "ModelFormat::is_native")]
    pub model: ModelFormat,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// What the model predicts (absent for basket classifiers, as in every artifact before it).
    #[serde(default, skip_serializing_if = "ModelKind::is_basket_classifier")]
    pub kind: ModelKind,
    /// Label column predicted.
    pub target: String,
    /// Classes in output order (a regression: its one output, e.g. `units`).
    pub classes: Vec<ClassInfo>,
    /// Features, vocabularies, ranges and hierarchy a basket classifier expects (a sales
    /// forecast's lookups are in [`FORECAST_FILE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<InputSchema>,
    /// Metrics on the held-out test split.
    pub metrics: ModelMetrics,
    /// Training details.
    pub training: TrainingSummary,
    /// Data and code provenance.
    pub provenance: Provenance,
    /// Every other file of the artifact with its checksum.
    pub files: BTreeMap<String, FileEntry>,
}

/// What a model predicts, and so which features it computes and how its answer reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// The price sensitivity (LA/MM/UM) of a shopping basket, from the basket pipeline.
    #[default]
    BasketClassifier,
    /// Units sold per store, product and day, from the forecast pipeline ([`FORECAST_FILE`]).
    SalesForecast,
    /// A class from the columns of any table ([`TABULAR_FILE`](crate::tabular::TABULAR_FILE)).
    TabularClassifier,
    /// A number from the columns of any table ([`TABULAR_FILE`](crate::tabular::TABULAR_FILE)).
    TabularRegressor,
}

impl ModelKind {
    /// Whether this is the default, [`ModelKind::BasketClassifier`].
    pub fn is_basket_classifier(&self) -> bool {
        *self == Self::BasketClassifier
    }

    /// The name answers and `/models` use (`basket-classifier`, `sales-forecast`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BasketClassifier => "basket-classifier",
            Self::SalesForecast => "sales-forecast",
            Self::TabularClassifier => "tabular-classifier",
            Self::TabularRegressor => "tabular-regressor",
        }
    }
}

/// Held-out metrics: a classifier's or a regression's (serialised as the inner object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ModelMetrics {
    /// Accuracy, F1, confusion matrix, log loss, calibration.
    Classification(Metrics),
    /// Poisson deviance, RMSE, MAE, WAPE, bias.
    Regression(RegressionMetrics),
}

impl ModelMetrics {
    /// A classifier's metrics.
    pub fn classification(&self) -> Option<&Metrics> {
        match self {
            Self::Classification(m) => Some(m),
            Self::Regression(_) => None,
        }
    }

    /// A regression's metrics.
    pub fn regression(&self) -> Option<&RegressionMetrics> {
        match self {
            Self::Regression(m) => Some(m),
            Self::Classification(_) => None,
        }
    }
}

/// How an artifact stores its trees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelFormat {
    /// The engine's own ensemble, [`MODEL_FILE`].
    #[default]
    Native,
    /// An ONNX tree-ensemble classifier, imported into the engine when the artifact loads.
    Onnx {
        /// The ONNX file (normally [`ONNX_FILE`]).
        file: String,
        /// What each column of the ONNX input is.
        inputs: InputMapping,
    },
}

impl ModelFormat {
    /// Whether this is [`ModelFormat::Native`].
    pub fn is_native(&self) -> bool {
        *self == Self::Native
    }

    /// The file holding the trees.
    pub fn file(&self) -> &str {
        match self {
            Self::Native => MODEL_FILE,
            Self::Onnx { file, .. } => file,
        }
    }
}

/// Why an artifact was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Reading or writing a path failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The `.tar.gz` could not be read.
    #[error("archive {path}: {reason}")]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A file the manifest needs is absent.
    #[error("{file}: missing from the artifact")]
    MissingFile {
        /// File name.
        file: String,
    },
    /// A file is not valid JSON of the expected shape.
    #[error("{file}: cannot be parsed: {reason}")]
    Parse {
        /// File name.
        file: String,
        /// Parser message.
        reason: String,
    },
    /// The artifact was written by an incompatible format version.
    #[error(
        "manifest.json: format_version {found} is not supported (this build reads {FORMAT_VERSION} to {ONNX_FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// Version found.
        found: u32,
    },
    /// A file's size differs from the manifest (e.g. truncated).
    #[error("{file}: size is {actual} bytes, manifest says {expected} (truncated or replaced)")]
    Size {
        /// File name.
        file: String,
        /// Size in the manifest.
        expected: u64,
        /// Size found.
        actual: u64,
    },
    /// A file, or the artifact as a whole, is larger than a limit (found before it was read).
    #[error("{file}: {bytes} bytes, more than the {limit} bytes allowed for {what}")]
    TooLarge {
        /// File name (or what was being read).
        file: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
        /// Which limit, e.g. `a model file (MAX_MODEL_FILE_BYTES)`.
        what: &'static str,
    },
    /// A file changed size while it was read (e.g. a copy in progress): worth trying again.
    #[error("{file}: changed while it was read (it had {expected} bytes when opened; a copy in progress?)")]
    Changed {
        /// File name.
        file: String,
        /// Its size when opened.
        expected: u64,
    },
    /// A file's sha256 differs from the manifest (e.g. tampered).
    #[error("{file}: sha256 is {actual}, manifest says {expected} (corrupted or tampered)")]
    Checksum {
        /// File name.
        file: String,
        /// Checksum in the manifest.
        expected: String,
        /// Checksum computed.
        actual: String,
    },
    /// The content is well-formed but unusable.
    #[error("{file}: {reason}")]
    Invalid {
        /// File name.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// This build carries no embedded model.
    #[error("this build has no embedded default model (models/default was empty when it was built)")]
    NoEmbeddedModel,
    /// This build carries no embedded sales forecast.
    #[error("this build has no embedded sales forecast (models/sales-forecast was empty when it was built)")]
    NoEmbeddedForecast,
    /// This build carries no embedded tabular model.
    #[error("this build has no embedded tabular classifier (models/tabular was empty when it was built)")]
    NoEmbeddedTabular,
}

impl ArtifactError {
    /// Whether trying again may succeed without the artifact changing: reading failed (a path
    /// missing or unreadable) or a file changed while it was read. Every other error is a
    /// property of the artifact as read, which only a new version changes.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Io { .. } | Self::Changed { .. })
    }
}

/// A verified, compiled model ready to score.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest.
    pub manifest: Manifest,
    /// How records become feature rows, by kind of model.
    pub features: Features,
    /// Compiled ensemble.
    pub engine: Engine,
    /// Reference distributions for drift monitoring ([`crate::drift::REFERENCE_FILE`]); `None` in artifacts
    /// made before they were recorded.
    pub reference: Option<Reference>,
    /// The model's explainer, or why it cannot explain (no covers in an older artifact).
    pub explainer: Result<Explainer, ExplainError>,
    /// Global importance of the input fields ([`crate::explain::EXPLAIN_FILE`]); `None` in
    /// artifacts made before it was recorded.
    pub importance: Option<Importance>,
    /// The model card ([`CARD_FILE`] and its charts); `None` when the artifact has none (an
    /// import, or an artifact written by other tools).
    pub card: Option<ModelCard>,
}

/// The model card an artifact carries: `card.md` and the SVG charts listed beside it, verified
/// against the manifest like every file (invalid UTF-8 is replaced, not refused: the card is
/// for reading, not for scoring).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelCard {
    /// The Markdown of [`CARD_FILE`].
    pub markdown: String,
    /// Every `.svg` file the manifest lists, by file name.
    pub charts: BTreeMap<String, String>,
}

/// How a model's records become feature rows: the one pipeline of its kind, shared by training
/// and serving.
#[derive(Debug, Clone)]
pub enum Features {
    /// A basket classifier's pipeline, built from the manifest's input schema.
    Basket(FeaturePipeline),
    /// A sales forecast's training statistics ([`FORECAST_FILE`]).
    Sales(SalesStats),
    /// A tabular model's columns ([`TABULAR_FILE`](crate::tabular::TABULAR_FILE)).
    Tabular(TabularSchema),
}

impl Artifact {
    /// What the model predicts.
    pub fn kind(&self) -> ModelKind {
        self.manifest.kind
    }

    /// A basket classifier's feature pipeline.
    pub fn pipeline(&self) -> Option<&FeaturePipeline> {
        match &self.features {
            Features::Basket(pipeline) => Some(pipeline),
            _ => None,
        }
    }

    /// A sales forecast's statistics.
    pub fn sales(&self) -> Option<&SalesStats> {
        match &self.features {
            Features::Sales(stats) => Some(stats),
            _ => None,
        }
    }

    /// The names of the engine's features, in feature order.
    pub fn feature_names(&self) -> Vec<String> {
        match &self.features {
            Features::Basket(_) => crate::features::FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect(),
            Features::Sales(_) => crate::forecast::FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect(),
            Features::Tabular(schema) => schema.columns.iter().map(|c| c.name.clone()).collect(),
        }
    }

    /// A tabular model's columns.
    pub fn tabular(&self) -> Option<&TabularSchema> {
        match &self.features {
            Features::Tabular(schema) => Some(schema),
            _ => None,
        }
    }
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn parse<T: serde::de::DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<T, ArtifactError> {
    serde_json::from_slice(bytes).map_err(|e| ArtifactError::Parse { file: file.to_owned(), reason: e.to_string() })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io { path: path.to_owned(), source }
}
