//! `retail-api import-onnx`: a user's ONNX tree-ensemble classifier becomes a servable artifact.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use retail_model::import::{self, ImportConfig};

use crate::train::{Bars, created_at, written};

/// `retail-api import-onnx`.
#[derive(Debug, Args)]
pub struct ImportOnnxArgs {
    /// ONNX model: a tree-ensemble classifier (ai.onnx.ml TreeEnsembleClassifier) without ZipMap.
    #[arg(long, env = "RETAIL_ONNX")]
    onnx: PathBuf,
    /// Input mapping (JSON): what each column of the ONNX input is, e.g.
    /// `{"columns":[{"feature":"SPEND"},{"feature":"STORE_REGION","one_hot":"LONDON"}]}`.
    #[arg(long, env = "RETAIL_ONNX_INPUTS")]
    inputs: PathBuf,
    /// Labelled transaction CSV to evaluate the imported model on (its metrics go in the manifest).
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
    let config = ImportConfig {
        onnx: args.onnx.clone(),
        inputs: args.inputs.clone(),
        data: args.data.clone(),
        out: args.out.clone(),
        replace: args.force,
        version: args.model_version.clone(),
        created_at: created_at(),
    };
    let progress = Bars::new();
    let manifest =
        import::import_onnx(&config, &progress).with_context(|| format!("cannot import {}", args.onnx.display()))?;
    drop(progress);
    written(&args.out, &manifest, "metrics")
}
