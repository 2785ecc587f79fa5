//! `retail-api import-onnx --label`: a tree ensemble trained in Python on a generic table
//! (scikit-learn, XGBoost, LightGBM; `TreeEnsembleClassifier` or `TreeEnsembleRegressor` over
//! the raw numeric columns) becomes a tabular artifact. The labelled CSV names the columns (its
//! header, in the model's input order), gives their training ranges, and is scored for the
//! manifest's metrics. Missing values follow each node as onnxruntime routes them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use super::data::{self, Cells, Roles};
use super::evaluation::Scored;
use super::training::{OwnedLabels, label_texts};
use super::{TABULAR_FILE, TabularSchema};
use crate::artifact::{
    self, Artifact, ClassInfo, Manifest, ModelFormat, ModelKind, ONNX_FILE, ONNX_FORMAT_VERSION, Provenance, SplitRows,
    TrainingSummary,
};
use crate::drift::{REFERENCE_FILE, Reference, Role};
use crate::engine::Engine;
use crate::explain::{Attribution, ExplainFile};
use crate::import::{ImportError, with_explain};
use crate::onnx::{self, InputMapping, RawTask};

/// What to import.
#[derive(Debug, Clone)]
pub struct TabularImportConfig {
    /// The ONNX file.
    pub onnx: PathBuf,
    /// Labelled CSV: the model's input columns in order, plus the label.
    pub data: PathBuf,
    /// The label column.
    pub label: String,
    /// Columns of the CSV that are not model inputs.
    pub ignore: Vec<String>,
    /// Model name.
    pub name: String,
    /// Artifact directory.
    pub out: PathBuf,
    /// Replace `out`.
    pub replace: bool,
    /// Version (default: a prefix of the ONNX file's sha256).
    pub version: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
}

/// Imports, scores on the data and writes the artifact; returns its manifest, loaded back.
pub fn import_tabular(config: &TabularImportConfig) -> Result<Manifest, ImportError> {
    let start = Instant::now();
    let onnx_bytes =
        std::fs::read(&config.onnx).map_err(|source| ImportError::Read { path: config.onnx.clone(), source })?;
    let onnx_error = |source| ImportError::Onnx { path: config.onnx.clone(), source };
    let imported = onnx::import_raw(&onnx_bytes, None).map_err(onnx_error)?;
    let engine =
        Engine::compile(&imported.spec).map_err(|source| ImportError::Engine { path: config.onnx.clone(), source })?;
    let data_error = |reason: String| ImportError::Data { path: config.data.clone(), reason };
    let roles = Roles { label: config.label.clone(), ignore: config.ignore.clone(), ..Roles::default() };
    let table = data::read_table(&config.data, &roles).map_err(|e| data_error(e.to_string()))?;
    if let Some((name, _)) = table.features.iter().find(|(_, cells)| !matches!(cells, Cells::Numbers(_))) {
        return Err(data_error(format!("column {name:?} is not numeric; a model over a raw vector takes numbers")));
    }
    if table.features.len() != imported.n_features {
        return Err(data_error(format!(
            "{} feature columns (besides {:?}), the ONNX input has {}",
            table.features.len(),
            config.label,
            imported.n_features
        )));
    }
    let all: Vec<usize> = (0..table.rows).collect();
    let schema: TabularSchema = data::infer_schema(&table, &all);
    let schema_json = serde_json::to_vec_pretty(&schema).map_err(|e| data_error(e.to_string()))?;
    let (x, unseen) = data::encode_rows(&table, &schema, &all);
    let (outputs, labels, kind) = match &imported.task {
        RawTask::Classification { classes } => {
            let index: BTreeMap<&str, u8> = classes.iter().enumerate().map(|(i, c)| (c.as_str(), i as u8)).collect();
            let labels = label_texts(&table.label)
                .iter()
                .map(|t| index.get(t.as_str()).copied())
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| {
                    data_error(format!(
                        "{:?} holds a class the model does not have ({})",
                        config.label,
                        classes.join(", ")
                    ))
                })?;
            (classes.clone(), OwnedLabels::Classes(labels), ModelKind::TabularClassifier)
        }
        RawTask::Regression => {
            let Cells::Numbers(values) = &table.label else {
                return Err(data_error(format!("{:?} is not numeric; the model is a regression", config.label)));
            };
            (imported.spec.classes.clone(), OwnedLabels::Values(values.clone()), ModelKind::TabularRegressor)
        }
    };
    let names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
    let reference = Reference::of_rows(&names, &vec![Role::Input; names.len()], &imported.spec, &engine, &x);
    let regression = kind == ModelKind::TabularRegressor;
    let explain = ExplainFile::of_rows(&imported.spec, &x, Attribution::identity(names.clone()), regression);
    let scored = Scored::new(&engine, &x, labels, &outputs, unseen);
    let onnx_sha = artifact::sha256_hex(&onnx_bytes);
    let summary = &imported.summary;
    let mut manifest = Manifest {
        format_version: ONNX_FORMAT_VERSION,
        name: config.name.clone(),
        version: config.version.clone().unwrap_or_else(|| onnx_sha[..12].to_owned()),
        model: ModelFormat::Onnx {
            file: ONNX_FILE.to_owned(),
            inputs: InputMapping { input: Some(imported.input_name.clone()), columns: Vec::new(), classes: None },
        },
        created_at: config.created_at.clone(),
        kind,
        target: config.label.clone(),
        classes: outputs.iter().map(|c| ClassInfo { code: c.clone(), label: c.clone() }).collect(),
        input_schema: None,
        metrics: scored.metrics(),
        training: TrainingSummary {
            algorithm: format!(
                "ONNX tree ensemble ({}, post_transform {}) imported into the native engine",
                summary.producer, summary.post_transform
            ),
            params: serde_json::json!({ "onnx_sha256": onnx_sha, "onnx": summary }),
            best_iteration: summary.trees,
            rounds_run: summary.trees,
            validation_log_loss: None,
            validation_metric: None,
            validation_loss: None,
            rows: SplitRows { train: 0, validation: 0, test: table.rows, dates: None },
            seconds: start.elapsed().as_secs_f64(),
        },
        provenance: Provenance {
            rows: Some(table.rows as u64),
            ..Provenance::of(&config.data, table.fingerprint.clone(), table.rows as u64, 0)
        },
        files: BTreeMap::new(),
    };
    manifest.provenance.libraries.insert("onnx producer".to_owned(), summary.producer.clone());
    artifact::write_dir(
        &config.out,
        manifest,
        &with_explain(
            vec![(ONNX_FILE, onnx_bytes), (TABULAR_FILE, schema_json), (REFERENCE_FILE, reference.to_json())],
            explain,
        ),
        config.replace,
    )?;
    Ok(Artifact::load(&config.out)?.manifest)
}
