//! Model artifact: a directory (or `.tar.gz` of one) holding `manifest.json` and the files it
//! lists with their sha256. Loading verifies the format version, every checksum and size, the
//! input schema and the ensemble before anything can serve. The trees are either the engine's
//! own `model.json` or an ONNX tree-ensemble classifier (`model.onnx`, format version 2) that is
//! imported into the same engine at load time.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::{Engine, EnsembleSpec};
use crate::features::{FeaturePipeline, InputSchema};
use crate::metrics::Metrics;
use crate::onnx::{self, InputMapping};

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
/// Largest artifact (sum of file sizes) accepted, so a hostile archive cannot exhaust memory.
pub const MAX_ARTIFACT_BYTES: u64 = 512 * 1024 * 1024;

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
    /// Labelled baskets used (train + validation + test).
    pub baskets: u64,
    /// Seed of the split, augmentation and training.
    pub seed: u64,
    /// Version of the code that trained it (`retail-model <version> (<git commit>)`).
    pub code_version: String,
    /// Versions of the libraries and toolchain involved.
    pub libraries: BTreeMap<String, String>,
}

/// How the model was trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Algorithm and objective.
    pub algorithm: String,
    /// Hyper-parameters as used.
    pub params: serde_json::Value,
    /// Boosting rounds kept (best validation log loss).
    pub best_iteration: usize,
    /// Rounds run before early stopping.
    pub rounds_run: usize,
    /// Validation log loss at the best iteration.
    pub validation_log_loss: f64,
    /// Baskets per split, split by customer.
    pub rows: SplitRows,
    /// Wall-clock training time in seconds (informational, not reproducible).
    pub seconds: f64,
}

/// Basket counts of the customer-level split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitRows {
    /// Training baskets.
    pub train: usize,
    /// Early-stopping baskets.
    pub validation: usize,
    /// Held-out baskets the manifest metrics are computed on.
    pub test: usize,
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
    /// Label column predicted.
    pub target: String,
    /// Classes in output order.
    pub classes: Vec<ClassInfo>,
    /// Features, vocabularies, ranges and hierarchy the model expects.
    pub input_schema: InputSchema,
    /// Metrics on the held-out test split.
    pub metrics: Metrics,
    /// Training details.
    pub training: TrainingSummary,
    /// Data and code provenance.
    pub provenance: Provenance,
    /// Every other file of the artifact with its checksum.
    pub files: BTreeMap<String, FileEntry>,
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
}

/// A verified, compiled model ready to score.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The manifest.
    pub manifest: Manifest,
    /// Feature pipeline built from the manifest's input schema.
    pub pipeline: FeaturePipeline,
    /// Compiled ensemble.
    pub engine: Engine,
}

/// Hex sha256 of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Artifact {
    /// Loads a directory or a `.tar.gz` / `.tgz` archive.
    pub fn load(path: &Path) -> Result<Self, ArtifactError> {
        let files = if path.is_dir() { read_dir_files(path)? } else { read_archive(path)? };
        Self::from_files(&files)
    }

    /// Verifies and compiles a `.tar.gz` held in memory (e.g. downloaded); `name` labels errors.
    pub fn from_tar_gz(bytes: &[u8], name: &str) -> Result<Self, ArtifactError> {
        Self::from_files(&unpack(bytes, Path::new(name))?)
    }

    /// The model embedded in this build (`models/default`).
    pub fn embedded_default() -> Result<Self, ArtifactError> {
        if crate::embedded::FILES.is_empty() {
            return Err(ArtifactError::NoEmbeddedModel);
        }
        let files = crate::embedded::FILES.iter().map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec())).collect();
        Self::from_files(&files)
    }

    /// Verifies and compiles an artifact from its files (name → content).
    pub fn from_files(files: &BTreeMap<String, Vec<u8>>) -> Result<Self, ArtifactError> {
        let manifest_bytes =
            files.get(MANIFEST_FILE).ok_or_else(|| ArtifactError::MissingFile { file: MANIFEST_FILE.to_owned() })?;
        // Read the version first so an old or future artifact gets a version error, not a parse error.
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = parse(MANIFEST_FILE, manifest_bytes)?;
        if !(FORMAT_VERSION..=ONNX_FORMAT_VERSION).contains(&version.format_version) {
            return Err(ArtifactError::UnsupportedVersion { found: version.format_version });
        }
        let manifest: Manifest = parse(MANIFEST_FILE, manifest_bytes)?;
        let invalid = |file: &str, reason: String| ArtifactError::Invalid { file: file.to_owned(), reason };
        if !manifest.model.is_native() && manifest.format_version < ONNX_FORMAT_VERSION {
            return Err(invalid(
                MANIFEST_FILE,
                format!("an ONNX model needs format_version {ONNX_FORMAT_VERSION}, so older builds refuse it"),
            ));
        }
        let model_file = manifest.model.file();
        if !manifest.files.contains_key(model_file) {
            return Err(invalid(MANIFEST_FILE, format!("does not list {model_file}")));
        }
        for (name, entry) in &manifest.files {
            let content = files.get(name).ok_or_else(|| ArtifactError::MissingFile { file: name.clone() })?;
            let actual = content.len() as u64;
            if actual != entry.bytes {
                return Err(ArtifactError::Size { file: name.clone(), expected: entry.bytes, actual });
            }
            let actual = sha256_hex(content);
            if actual != entry.sha256 {
                return Err(ArtifactError::Checksum { file: name.clone(), expected: entry.sha256.clone(), actual });
            }
        }
        let classes: Vec<&str> = manifest.classes.iter().map(|c| c.code.as_str()).collect();
        let spec: EnsembleSpec = match &manifest.model {
            ModelFormat::Native => parse(MODEL_FILE, &files[MODEL_FILE])?,
            ModelFormat::Onnx { file, inputs } => {
                onnx::import(&files[file], inputs, &manifest.input_schema, &classes)
                    .map_err(|e| invalid(file, e.to_string()))?
                    .spec
            }
        };
        if spec.classes != classes {
            return Err(invalid(
                model_file,
                format!("classes {:?} differ from the manifest's {classes:?}", spec.classes),
            ));
        }
        let engine = Engine::compile(&spec).map_err(|e| invalid(model_file, e.to_string()))?;
        let pipeline =
            FeaturePipeline::new(manifest.input_schema.clone()).map_err(|e| invalid(MANIFEST_FILE, e.to_string()))?;
        if engine.n_features() != crate::features::N_FEATURES {
            return Err(invalid(
                model_file,
                format!(
                    "expects {} features, the pipeline computes {}",
                    engine.n_features(),
                    crate::features::N_FEATURES
                ),
            ));
        }
        Ok(Self { manifest, pipeline, engine })
    }
}

fn parse<T: serde::de::DeserializeOwned>(file: &str, bytes: &[u8]) -> Result<T, ArtifactError> {
    serde_json::from_slice(bytes).map_err(|e| ArtifactError::Parse { file: file.to_owned(), reason: e.to_string() })
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io { path: path.to_owned(), source }
}

fn read_dir_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, ArtifactError> {
    let mut files = BTreeMap::new();
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let bytes = fs::read(&path).map_err(io_error(&path))?;
        total += bytes.len() as u64;
        if total > MAX_ARTIFACT_BYTES {
            return Err(ArtifactError::Invalid {
                file: dir.display().to_string(),
                reason: format!("larger than {MAX_ARTIFACT_BYTES} bytes"),
            });
        }
        files.insert(name.to_owned(), bytes);
    }
    Ok(files)
}

/// Reads the regular files of a `.tar.gz`. The manifest may sit at the root or inside one
/// top-level directory (`model/manifest.json`); paths are taken relative to it.
fn read_archive(path: &Path) -> Result<BTreeMap<String, Vec<u8>>, ArtifactError> {
    let file = fs::File::open(path).map_err(io_error(path))?;
    unpack(file, path)
}

/// The files of a `.tar.gz` read from `reader`; `path` names it in errors.
fn unpack(reader: impl Read, path: &Path) -> Result<BTreeMap<String, Vec<u8>>, ArtifactError> {
    let archive_error = |reason: String| ArtifactError::Archive { path: path.to_owned(), reason };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut entries = Vec::new();
    let mut total = 0u64;
    for entry in archive.entries().map_err(|e| archive_error(e.to_string()))? {
        let mut entry = entry.map_err(|e| archive_error(e.to_string()))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| archive_error(e.to_string()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_owned();
        total += entry.size();
        if total > MAX_ARTIFACT_BYTES {
            return Err(archive_error(format!("unpacks to more than {MAX_ARTIFACT_BYTES} bytes")));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        entry.read_to_end(&mut bytes).map_err(|e| archive_error(format!("{name}: {e}")))?;
        entries.push((name, bytes));
    }
    let root = entries
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(MANIFEST_FILE))
        .filter(|prefix| prefix.is_empty() || (prefix.ends_with('/') && prefix.matches('/').count() == 1))
        .min_by_key(|prefix| prefix.len())
        .ok_or_else(|| archive_error(format!("no {MANIFEST_FILE} at its root or in one top-level directory")))?
        .to_owned();
    Ok(entries
        .into_iter()
        .filter_map(|(name, bytes)| {
            let rel = name.strip_prefix(&root)?;
            (!rel.contains('/')).then(|| (rel.to_owned(), bytes))
        })
        .collect())
}

/// Writes an artifact directory atomically: files go to a temporary sibling directory, the
/// manifest gets their checksums, and the directory is renamed into place. An existing `out` is
/// replaced only when `replace` is set. Nothing is left half-written on error.
pub fn write_dir(
    out: &Path,
    mut manifest: Manifest,
    files: &[(&str, Vec<u8>)],
    replace: bool,
) -> Result<(), ArtifactError> {
    if out.exists() && !replace {
        return Err(ArtifactError::Invalid {
            file: out.display().to_string(),
            reason: "already exists (pass --force to replace it)".to_owned(),
        });
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(io_error(&parent))?;
    let base = out.file_name().and_then(|n| n.to_str()).unwrap_or("artifact");
    let tmp = parent.join(format!(".{base}.tmp-{}", std::process::id()));
    let result = (|| {
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_error(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io_error(&tmp))?;
        manifest.files.clear();
        for (name, bytes) in files {
            let path = tmp.join(name);
            fs::write(&path, bytes).map_err(io_error(&path))?;
            manifest
                .files
                .insert((*name).to_owned(), FileEntry { sha256: sha256_hex(bytes), bytes: bytes.len() as u64 });
        }
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| ArtifactError::Parse { file: MANIFEST_FILE.to_owned(), reason: e.to_string() })?;
        let path = tmp.join(MANIFEST_FILE);
        fs::write(&path, json).map_err(io_error(&path))?;
        if out.exists() {
            let old = parent.join(format!(".{base}.old-{}", std::process::id()));
            fs::rename(out, &old).map_err(io_error(out))?;
            fs::rename(&tmp, out).map_err(io_error(out))?;
            fs::remove_dir_all(&old).map_err(io_error(&old))
        } else {
            fs::rename(&tmp, out).map_err(io_error(out))
        }
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// Verifies the artifact directory `dir` and packs it as a reproducible `model.tar.gz`: the
/// manifest and the files it lists, at the archive's root, in name order, with fixed owners,
/// modes and times (so the same artifact always gives the same bytes and checksum).
pub fn pack(dir: &Path) -> Result<(Artifact, Vec<u8>), ArtifactError> {
    let files = read_dir_files(dir)?;
    let artifact = Artifact::from_files(&files)?;
    let archive_error = |e: std::io::Error| ArtifactError::Archive { path: dir.to_owned(), reason: e.to_string() };
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for name in std::iter::once(MANIFEST_FILE).chain(artifact.manifest.files.keys().map(String::as_str)) {
        let bytes = &files[name];
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, bytes.as_slice()).map_err(archive_error)?;
    }
    let bytes = tar.into_inner().and_then(|gz| gz.finish()).map_err(archive_error)?;
    Ok((artifact, bytes))
}
