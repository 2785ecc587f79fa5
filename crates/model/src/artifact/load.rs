//! Loading an artifact: every file verified against the manifest, the trees imported or parsed
//! and compiled, the features of its kind built, before anything can serve.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    Artifact, ArtifactError, CARD_FILE, FORECAST_FILE, FORMAT_VERSION, Features, FileEntry, MANIFEST_FILE,
    MAX_ARTIFACT_BYTES, MAX_MANIFEST_BYTES, MAX_MODEL_FILE_BYTES, MODEL_FILE, Manifest, ModelCard, ModelFormat,
    ModelKind, ONNX_FORMAT_VERSION, parse, read, sha256_hex,
};
use crate::drift::{REFERENCE_FILE, Reference};
use crate::engine::{Engine, EnsembleSpec, Output};
use crate::explain::{Attribution, EXPLAIN_FILE, ExplainError, ExplainFile, Explainer, Importance};
use crate::features::{FeaturePipeline, InputSchema};
use crate::forecast::SalesStats;
use crate::onnx;
use crate::tabular::{TABULAR_FILE, TabularSchema};

impl Artifact {
    /// Loads a directory or a `.tar.gz` / `.tgz` archive.
    pub fn load(path: &Path) -> Result<Self, ArtifactError> {
        let files = if path.is_dir() { read::read_dir_files(path)? } else { read::read_archive(path)? };
        Self::from_files(&files)
    }

    /// Verifies and compiles a `.tar.gz` held in memory (e.g. downloaded); `name` labels errors.
    /// Given the bytes themselves, it frees them once unpacked.
    pub fn from_tar_gz(bytes: impl AsRef<[u8]>, name: &str) -> Result<Self, ArtifactError> {
        let files = read::unpack(bytes.as_ref(), Path::new(name))?;
        drop(bytes);
        Self::from_files(&files)
    }

    /// The model embedded in this build (`models/default`).
    pub fn embedded_default() -> Result<Self, ArtifactError> {
        Self::embedded(ModelKind::BasketClassifier)
    }

    /// The sales forecast embedded in this build (`models/sales-forecast`).
    pub fn embedded_forecast() -> Result<Self, ArtifactError> {
        Self::embedded(ModelKind::SalesForecast)
    }

    /// The model of a kind embedded in this build: the basket classifier of `models/default`,
    /// the sales forecast of `models/sales-forecast`, or the tabular classifier of
    /// `models/tabular`. Verified like any other artifact.
    pub fn embedded(kind: ModelKind) -> Result<Self, ArtifactError> {
        let (embedded, missing) = match kind {
            ModelKind::BasketClassifier => (crate::embedded::FILES, ArtifactError::NoEmbeddedModel),
            ModelKind::SalesForecast => (crate::embedded::FORECAST_FILES, ArtifactError::NoEmbeddedForecast),
            ModelKind::TabularClassifier => (crate::embedded::TABULAR_FILES, ArtifactError::NoEmbeddedTabular),
            ModelKind::TabularRegressor => (&[][..], ArtifactError::NoEmbeddedTabular),
        };
        if embedded.is_empty() {
            return Err(missing);
        }
        let files = embedded
            .iter()
            .map(|(name, gz)| {
                let mut bytes = Vec::new();
                let io = |source| ArtifactError::Io { path: PathBuf::from(format!("embedded {name}")), source };
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(*gz), &mut bytes).map_err(io)?;
                Ok(((*name).to_owned(), bytes))
            })
            .collect::<Result<_, ArtifactError>>()?;
        let artifact = Self::from_files(&files)?;
        if artifact.kind() != kind {
            return Err(ArtifactError::Invalid {
                file: MANIFEST_FILE.to_owned(),
                reason: format!("the embedded {} is a {}", kind.as_str(), artifact.kind().as_str()),
            });
        }
        Ok(artifact)
    }

    /// Verifies and compiles an artifact from its files (name → content).
    pub fn from_files(files: &BTreeMap<String, Vec<u8>>) -> Result<Self, ArtifactError> {
        let manifest = parse_manifest(files)?;
        let invalid = |file: &str, reason: String| ArtifactError::Invalid { file: file.to_owned(), reason };
        check_listing(&manifest.model, &manifest.files)?;
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
        let model_file = manifest.model.file();
        let classes: Vec<&str> = manifest.classes.iter().map(|c| c.code.as_str()).collect();
        let spec: EnsembleSpec = match &manifest.model {
            ModelFormat::Native => parse(MODEL_FILE, &files[MODEL_FILE])?,
            ModelFormat::Onnx { file, .. }
                if matches!(manifest.kind, ModelKind::TabularClassifier | ModelKind::TabularRegressor) =>
            {
                onnx::import_raw(&files[file], None).map_err(|e| invalid(file, e.to_string()))?.spec
            }
            ModelFormat::Onnx { file, inputs } => {
                let schema = basket_schema(&manifest)?;
                onnx::import(&files[file], inputs, schema, &classes).map_err(|e| invalid(file, e.to_string()))?.spec
            }
        };
        if spec.classes != classes {
            return Err(invalid(
                model_file,
                format!("classes {:?} differ from the manifest's {classes:?}", spec.classes),
            ));
        }
        let engine = Engine::compile(&spec).map_err(|e| invalid(model_file, e.to_string()))?;
        let (features, n_features) = match manifest.kind {
            ModelKind::BasketClassifier => {
                let pipeline = FeaturePipeline::new(basket_schema(&manifest)?.clone())
                    .map_err(|e| invalid(MANIFEST_FILE, e.to_string()))?;
                (Features::Basket(pipeline), crate::features::N_FEATURES)
            }
            ModelKind::SalesForecast => {
                let link = matches!(spec.output, Output::Exp | Output::Identity);
                if !manifest.model.is_native() || !link || classes.len() != 1 {
                    let reason = "a sales forecast is a native ensemble with one output and the exp link \
                                  (Poisson) or the identity (squared error)";
                    return Err(invalid(model_file, reason.to_owned()));
                }
                let stats = SalesStats::from_json(listed(&manifest, files, FORECAST_FILE)?)
                    .map_err(|e| invalid(FORECAST_FILE, e.to_string()))?;
                (Features::Sales(stats), crate::forecast::N_FEATURES)
            }
            ModelKind::TabularClassifier | ModelKind::TabularRegressor => {
                let regressor = manifest.kind == ModelKind::TabularRegressor;
                if regressor != (classes.len() == 1) || regressor == (spec.output == Output::Softmax) {
                    let reason = "a tabular regressor has one output (identity or exp link), a classifier \
                                  two or more classes";
                    return Err(invalid(model_file, reason.to_owned()));
                }
                let schema = TabularSchema::from_json(listed(&manifest, files, TABULAR_FILE)?)
                    .map_err(|e| invalid(TABULAR_FILE, e.to_string()))?;
                let n = schema.len();
                (Features::Tabular(schema), n)
            }
        };
        if engine.n_features() != n_features {
            return Err(invalid(
                model_file,
                format!("expects {} features, the pipeline computes {n_features}", engine.n_features()),
            ));
        }
        let reference = match manifest.files.contains_key(REFERENCE_FILE) {
            true => Some(
                Reference::from_json(listed(&manifest, files, REFERENCE_FILE)?, n_features)
                    .map_err(|e| invalid(REFERENCE_FILE, e.to_string()))?,
            ),
            false => None,
        };
        let (explainer, importance) = explanations(&manifest, files, &spec, &features)?;
        let card = card(&manifest, files);
        Ok(Self { manifest, features, engine, reference, explainer, importance, card })
    }
}

/// The model card, when the manifest lists [`CARD_FILE`]: its Markdown and every listed SVG.
fn card(manifest: &Manifest, files: &BTreeMap<String, Vec<u8>>) -> Option<ModelCard> {
    let markdown = listed(manifest, files, CARD_FILE).ok()?;
    let charts = manifest
        .files
        .keys()
        .filter(|name| name.ends_with(".svg"))
        .filter_map(|name| Some((name.clone(), String::from_utf8_lossy(files.get(name)?).into_owned())))
        .collect();
    Some(ModelCard { markdown: String::from_utf8_lossy(markdown).into_owned(), charts })
}

/// The explainer of a loaded model and its global importance, from the optional
/// [`EXPLAIN_FILE`]: an artifact without it (made before explanations) loads, and explaining
/// answers [`ExplainError::NoCovers`]; a file that does not parse is refused like any other.
fn explanations(
    manifest: &Manifest,
    files: &BTreeMap<String, Vec<u8>>,
    spec: &EnsembleSpec,
    features: &Features,
) -> Result<(Result<Explainer, ExplainError>, Option<Importance>), ArtifactError> {
    if !manifest.files.contains_key(EXPLAIN_FILE) {
        let reason = format!("the artifact has no {EXPLAIN_FILE}; retrain or re-import it to explain");
        return Ok((Err(ExplainError::NoCovers { reason }), None));
    }
    let file = ExplainFile::from_json(listed(manifest, files, EXPLAIN_FILE)?)
        .map_err(|reason| ArtifactError::Invalid { file: EXPLAIN_FILE.to_owned(), reason })?;
    let regression = manifest.classes.len() == 1;
    let explainer = Explainer::new(spec, &file.leaf_covers, Attribution::of(features), regression);
    Ok((explainer, file.importance))
}

/// The content of a file the manifest lists (and so was verified), or a missing-file error.
fn listed<'a>(
    manifest: &Manifest,
    files: &'a BTreeMap<String, Vec<u8>>,
    name: &str,
) -> Result<&'a [u8], ArtifactError> {
    files
        .get(name)
        .filter(|_| manifest.files.contains_key(name))
        .map(Vec::as_slice)
        .ok_or_else(|| ArtifactError::MissingFile { file: name.to_owned() })
}

/// A basket classifier's input schema (which its manifest must have).
fn basket_schema(manifest: &Manifest) -> Result<&InputSchema, ArtifactError> {
    manifest.input_schema.as_ref().ok_or_else(|| ArtifactError::Invalid {
        file: MANIFEST_FILE.to_owned(),
        reason: "a basket classifier needs an input_schema".to_owned(),
    })
}

/// The manifest among `files`: at most [`MAX_MANIFEST_BYTES`], of a format version this build
/// reads (checked first, so an old or future artifact gets a version error, not a parse error).
fn parse_manifest(files: &BTreeMap<String, Vec<u8>>) -> Result<Manifest, ArtifactError> {
    let bytes =
        files.get(MANIFEST_FILE).ok_or_else(|| ArtifactError::MissingFile { file: MANIFEST_FILE.to_owned() })?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(ArtifactError::TooLarge {
            file: MANIFEST_FILE.to_owned(),
            bytes: bytes.len() as u64,
            limit: MAX_MANIFEST_BYTES,
            what: "a manifest (MAX_MANIFEST_BYTES)",
        });
    }
    #[derive(Deserialize)]
    struct Version {
        format_version: u32,
    }
    let version: Version = parse(MANIFEST_FILE, bytes)?;
    if !(FORMAT_VERSION..=ONNX_FORMAT_VERSION).contains(&version.format_version) {
        return Err(ArtifactError::UnsupportedVersion { found: version.format_version });
    }
    let manifest: Manifest = parse(MANIFEST_FILE, bytes)?;
    if !manifest.model.is_native() && manifest.format_version < ONNX_FORMAT_VERSION {
        return Err(ArtifactError::Invalid {
            file: MANIFEST_FILE.to_owned(),
            reason: format!("an ONNX model needs format_version {ONNX_FORMAT_VERSION}, so older builds refuse it"),
        });
    }
    Ok(manifest)
}

/// Checks what a manifest lists before any of it is read or hashed: plain file names (no
/// directories, so nothing outside the artifact is read), the model file among them within
/// [`MAX_MODEL_FILE_BYTES`], and all of them within [`MAX_ARTIFACT_BYTES`].
pub(super) fn check_listing(model: &ModelFormat, files: &BTreeMap<String, FileEntry>) -> Result<(), ArtifactError> {
    let invalid = |reason: String| ArtifactError::Invalid { file: MANIFEST_FILE.to_owned(), reason };
    if let Some(name) = files.keys().find(|n| n.is_empty() || *n == "." || *n == ".." || n.contains(['/', '\\', '\0']))
    {
        return Err(invalid(format!("lists {name:?}, which is not a plain file name")));
    }
    let model_file = model.file();
    let entry = files.get(model_file).ok_or_else(|| invalid(format!("does not list {model_file}")))?;
    if entry.bytes > MAX_MODEL_FILE_BYTES {
        return Err(ArtifactError::TooLarge {
            file: model_file.to_owned(),
            bytes: entry.bytes,
            limit: MAX_MODEL_FILE_BYTES,
            what: "a model file (MAX_MODEL_FILE_BYTES)",
        });
    }
    let total = files.values().fold(0u64, |total, e| total.saturating_add(e.bytes));
    if total > MAX_ARTIFACT_BYTES {
        return Err(ArtifactError::TooLarge {
            file: format!("{MANIFEST_FILE} (the files it lists)"),
            bytes: total,
            limit: MAX_ARTIFACT_BYTES,
            what: "an artifact (MAX_ARTIFACT_BYTES)",
        });
    }
    Ok(())
}
