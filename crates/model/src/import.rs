//! `retail-api import-onnx`: turns a user's ONNX tree-ensemble classifier and its input mapping
//! into a servable artifact. The ONNX file is stored as is (sha256 in the manifest) and imported
//! again on every load; the import is also evaluated on labelled data here, so `/model/metrics`
//! means the same for an imported model as for a trained one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::artifact::{
    self, Artifact, ArtifactError, ClassInfo, Manifest, ModelFormat, ONNX_FILE, ONNX_FORMAT_VERSION, Provenance,
    SplitRows, TrainingSummary,
};
use crate::data::{self, DataError};
use crate::drift::{REFERENCE_FILE, Reference};
use crate::engine::{Engine, EngineError};
use crate::explain::{Attribution, EXPLAIN_FILE, ExplainFile};
use crate::features::{FeaturePipeline, N_FEATURES};
use crate::metrics;
use crate::onnx::{self, InputMapping, OnnxError};
use crate::progress::Progress;
use crate::{CLASSES, MODEL_NAME, TARGET};

/// An import's files plus [`EXPLAIN_FILE`] when the `--data` rows reach every leaf of every
/// tree (covers must be positive); otherwise the artifact is written without it and answers
/// explanations with [`crate::explain::ExplainError::NoCovers`], as one made before them.
pub(crate) fn with_explain(
    mut files: Vec<(&'static str, Vec<u8>)>,
    explain: Result<ExplainFile, crate::explain::ExplainError>,
) -> Vec<(&'static str, Vec<u8>)> {
    if let Ok(explain) = explain {
        files.push((EXPLAIN_FILE, explain.to_json()));
    }
    files
}

/// What to import and where to write it.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// The ONNX model file.
    pub onnx: PathBuf,
    /// The input mapping (JSON, [`InputMapping`]).
    pub inputs: PathBuf,
    /// Labelled transaction CSV the imported model is evaluated on.
    pub data: PathBuf,
    /// Artifact directory to write.
    pub out: PathBuf,
    /// Replace `out` if it exists.
    pub replace: bool,
    /// Model version (default: the first 12 hex digits of the ONNX file's sha256).
    pub version: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The input mapping is not valid JSON of the expected shape.
    #[error("{path}: not an input mapping: {reason}")]
    Mapping {
        /// The mapping file.
        path: PathBuf,
        /// Parser message.
        reason: String,
    },
    /// The ONNX model cannot be imported.
    #[error("{path}: {source}")]
    Onnx {
        /// The ONNX file.
        path: PathBuf,
        /// Why.
        source: OnnxError,
    },
    /// The imported ensemble does not fit the engine (e.g. trees deeper than it supports).
    #[error("{path}: the imported trees cannot be served: {source}")]
    Engine {
        /// The ONNX file.
        path: PathBuf,
        /// Why.
        source: EngineError,
    },
    /// The evaluation data is unreadable or has no labelled baskets.
    #[error("{path}: {reason}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Writing or verifying the artifact failed.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
}

/// Imports, evaluates and writes the artifact; returns the manifest of the written artifact,
/// loaded back and verified.
pub fn import_onnx(config: &ImportConfig, progress: &dyn Progress) -> Result<Manifest, ImportError> {
    let start = Instant::now();
    let read = |path: &Path| std::fs::read(path).map_err(|source| ImportError::Read { path: path.to_owned(), source });
    let onnx_bytes = read(&config.onnx)?;
    let mapping: InputMapping = serde_json::from_slice(&read(&config.inputs)?)
        .map_err(|e| ImportError::Mapping { path: config.inputs.clone(), reason: e.to_string() })?;
    let onnx_error = |source| ImportError::Onnx { path: config.onnx.clone(), source };
    let schema = onnx::input_schema(&mapping).map_err(onnx_error)?;
    let imported = onnx::import(&onnx_bytes, &mapping, &schema, &CLASSES).map_err(onnx_error)?;
    let engine =
        Engine::compile(&imported.spec).map_err(|source| ImportError::Engine { path: config.onnx.clone(), source })?;
    let pipeline = FeaturePipeline::new(schema.clone())
        .map_err(|e| onnx_error(OnnxError::Mapping(format!("the schema it implies is unusable: {e}"))))?;

    let data_error = |reason: String| ImportError::Data { path: config.data.clone(), reason };
    let (baskets, bytes) =
        data::read_baskets(&config.data, progress).map_err(|e: DataError| data_error(e.to_string()))?;
    let fingerprint = format!("sha256:{}", artifact::sha256_hex(&bytes));
    drop(bytes);
    let mut rows = Vec::with_capacity(baskets.len() * N_FEATURES);
    let mut labels = Vec::with_capacity(baskets.len());
    for i in 0..baskets.len() {
        let (Some(label), Ok(encoded)) = (baskets.labels[i], pipeline.encode(&baskets.record(i))) else {
            continue;
        };
        rows.extend_from_slice(&encoded.features);
        labels.push(usize::from(label));
    }
    if labels.is_empty() {
        return Err(data_error("no labelled baskets to evaluate the model on".to_owned()));
    }
    let names: Vec<String> = crate::features::FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect();
    let mut reference = Reference::of_rows(&names, &crate::training::basket_roles(), &imported.spec, &engine, &rows);
    reference.label_rules(|feature, code| schema.category(feature, code));
    let mut probabilities = vec![0.0; labels.len() * CLASSES.len()];
    engine.predict_batch_parallel(&rows, &mut probabilities);
    let classes: Vec<String> = CLASSES.iter().map(|c| (*c).to_owned()).collect();
    let evaluation = metrics::evaluate(&classes, &probabilities, &labels);

    let onnx_sha = artifact::sha256_hex(&onnx_bytes);
    let summary = &imported.summary;
    let training = TrainingSummary {
        algorithm: format!(
            "ONNX TreeEnsembleClassifier ({}, post_transform {}) imported into the native engine",
            summary.producer, summary.post_transform
        ),
        params: serde_json::json!({ "onnx_sha256": onnx_sha, "onnx": summary }),
        best_iteration: summary.trees,
        rounds_run: summary.trees,
        // Not a validation split: the log loss on the evaluation data below.
        validation_log_loss: Some(evaluation.log_loss),
        validation_metric: None,
        validation_loss: None,
        rows: SplitRows { train: 0, validation: 0, test: labels.len(), dates: None },
        seconds: start.elapsed().as_secs_f64(),
    };
    let mut provenance =
        Provenance { baskets: labels.len() as u64, ..Provenance::of(&config.data, fingerprint, baskets.lines, 0) };
    provenance.libraries.insert("onnx producer".to_owned(), summary.producer.clone());
    let manifest = Manifest {
        format_version: ONNX_FORMAT_VERSION,
        name: MODEL_NAME.to_owned(),
        version: config.version.clone().unwrap_or_else(|| onnx_sha[..12].to_owned()),
        model: ModelFormat::Onnx { file: ONNX_FILE.to_owned(), inputs: mapping },
        created_at: config.created_at.clone(),
        target: TARGET.to_owned(),
        classes: ClassInfo::all(),
        kind: artifact::ModelKind::BasketClassifier,
        input_schema: Some(schema),
        metrics: artifact::ModelMetrics::Classification(evaluation),
        training,
        provenance,
        files: BTreeMap::new(),
    };
    artifact::write_dir(
        &config.out,
        manifest,
        &with_explain(
            vec![(ONNX_FILE, onnx_bytes), (REFERENCE_FILE, reference.to_json())],
            ExplainFile::of_rows(&imported.spec, &rows, Attribution::basket(), false),
        ),
        config.replace,
    )?;
    Ok(Artifact::load(&config.out)?.manifest)
}
