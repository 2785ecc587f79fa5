//! `retail-api import-onnx`: a user's ONNX tree-ensemble classifier becomes a servable artifact.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use retail_model::import::{self, ImportConfig};
use retail_model::tabular::import::{TabularImportConfig, import_tabular as import_tabular_model};

use crate::train::{Bars, created_at, written};

/// `retail-api import-onnx`.
#[derive(Debug, Args)]
pub struct ImportOnnxArgs {
    /// ONNX model: a tree-ensemble classifier (ai.onnx.ml TreeEnsembleClassifier) without ZipMap.
    #[arg(long, env = "RETAIL_ONNX")]
    onnx: PathBuf,
    /// Input mapping (JSON) of a basket classifier: what each column of the ONNX input is, e.g.
    /// `{"columns":[{"feature":"SPEND"},{"feature":"STORE_REGION","one_hot":"LONDON"}]}`.
    #[arg(long, env = "RETAIL_ONNX_INPUTS", required_unless_present = "label", conflicts_with = "label")]
    inputs: Option<PathBuf>,
    /// A tabular model over the raw input vector (classifier or regressor): the label column of
    /// --data, whose other columns are the model's inputs in order (their header names them).
    #[arg(long, env = "RETAIL_LABEL")]
    label: Option<String>,
    /// Columns of --data that are not model inputs (comma-separated; with --label).
    #[arg(long, env = "RETAIL_IGNORE", value_delimiter = ',', requires = "label")]
    ignore: Vec<String>,
    /// Model name of a tabular import (default: the --out directory's name).
    #[arg(long = "name", env = "RETAIL_MODEL_NAME", requires = "label")]
    name: Option<String>,
    /// Labelled CSV to evaluate the imported model on (its metrics go in the manifest):
    /// transactions for a basket classifier, any table with --label.
    #[arg(long, env = "RETAIL_DATA")]
    data: PathBuf,
    /// Artifact directory to write.
    #[arg(long, env = "RETAIL_MODEL_OUT")]
    out: PathBuf,
    /// Replace `--out` if it exists.
    #[arg(long, env = "RETAIL_FORCE")]
    force: bool,
    /// Model version (default: first 12 hex digits of the ONNX file's sha256).
    #[arg(long = "model-version", env = "RETAIL_MODEL_VERSION")]
    model_version: Option<String>,
}

pub fn import_onnx(args: &ImportOnnxArgs) -> anyhow::Result<()> {
    let replace = crate::output::check_dir(&args.out, args.force)?;
    let (Some(inputs), None) = (&args.inputs, &args.label) else {
        return import_tabular(args, replace);
    };
    let config = ImportConfig {
        onnx: args.onnx.clone(),
        inputs: inputs.clone(),
        data: args.data.clone(),
        out: args.out.clone(),
        replace,
        version: args.model_version.clone(),
        created_at: created_at(),
    };
    let progress = Bars::new();
    let manifest =
        import::import_onnx(&config, &progress).with_context(|| format!("cannot import {}", args.onnx.display()))?;
    drop(progress);
    written(&args.out, &manifest, "metrics")
}

/// `import-onnx --label`: a raw-vector tree ensemble becomes a tabular artifact.
fn import_tabular(args: &ImportOnnxArgs, replace: bool) -> anyhow::Result<()> {
    let label = args.label.clone().context("--label or --inputs is required")?;
    let config = TabularImportConfig {
        onnx: args.onnx.clone(),
        data: args.data.clone(),
        label,
        ignore: args.ignore.clone(),
        name: args.name.clone().unwrap_or_else(|| {
            args.out.file_name().map_or_else(|| "tabular".to_owned(), |n| n.to_string_lossy().into_owned())
        }),
        out: args.out.clone(),
        replace,
        version: args.model_version.clone(),
        created_at: created_at(),
    };
    let manifest = import_tabular_model(&config).with_context(|| format!("cannot import {}", args.onnx.display()))?;
    written(&args.out, &manifest, "metrics")
}
