//! The committed default model is reproducible from its documented command.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{bin, root};

/// Runs `scripts/<script>` into `<tmp>/<model>`; the rebuilt and the committed directories.
fn rebuild(script: &str, model: &str, tmp: &Path) -> (PathBuf, PathBuf) {
    let out = tmp.join(model);
    let status = Command::new(root().join("scripts").join(script))
        .arg(&out)
        .env("RETAIL_API_BIN", bin().get_program())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run script");
    assert!(status.success(), "{script} failed");
    (out, root().join("models").join(model))
}

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).expect(file)
}

#[test]
fn train_default_model_script_reproduces_the_committed_model_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, committed) = rebuild("train-default-model.sh", "default", tmp.path());
    for file in ["model.json", "explain.json", "reference.json"] {
        assert!(
            read(&out, file) == read(&committed, file),
            "{file} differs from the committed one: rerun scripts/train-default-model.sh and commit models/default"
        );
    }
    let manifest = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&read(dir, "manifest.json")).expect("json")
    };
    let (new, old) = (manifest(&out), manifest(&committed));
    for key in ["version", "metrics", "input_schema", "classes", "created_at"] {
        assert_eq!(new[key], old[key], "manifest {key} differs");
    }
    for key in ["best_iteration", "rounds_run", "validation_log_loss", "rows", "params"] {
        assert_eq!(new["training"][key], old["training"][key], "training.{key} differs");
    }
    assert_eq!(new["provenance"]["data_fingerprint"], old["provenance"]["data_fingerprint"]);
}

#[test]
fn train_default_forecast_script_reproduces_the_committed_forecast_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, committed) = rebuild("train-default-forecast.sh", "sales-forecast", tmp.path());
    for file in
        ["model.json", "forecast.json", "explain.json", "reference.json", "predicted_vs_actual.svg", "residuals.svg"]
    {
        assert!(
            read(&out, file) == read(&committed, file),
            "{file} differs from the committed one: rerun scripts/train-default-forecast.sh and commit \
             models/sales-forecast"
        );
    }
    let manifest = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&read(dir, "manifest.json")).expect("json")
    };
    let (new, old) = (manifest(&out), manifest(&committed));
    for key in ["name", "version", "kind", "target", "classes", "metrics", "created_at"] {
        assert_eq!(new[key], old[key], "manifest {key} differs");
    }
    for key in ["best_iteration", "rounds_run", "validation_metric", "validation_loss", "rows", "params"] {
        assert_eq!(new["training"][key], old["training"][key], "training.{key} differs");
    }
    for key in ["data_fingerprint", "data_lines", "rows"] {
        assert_eq!(new["provenance"][key], old["provenance"][key], "provenance.{key} differs");
    }
}

#[test]
fn train_default_tabular_script_reproduces_the_committed_tabular_model_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, committed) = rebuild("train-default-tabular.sh", "tabular", tmp.path());
    for file in ["model.json", "tabular.json", "explain.json", "reference.json", "card.md", "importance.svg"] {
        assert!(
            read(&out, file) == read(&committed, file),
            "{file} differs from the committed one: rerun scripts/train-default-tabular.sh and commit models/tabular"
        );
    }
    let manifest = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&read(dir, "manifest.json")).expect("json")
    };
    let (new, old) = (manifest(&out), manifest(&committed));
    for key in ["name", "version", "kind", "target", "classes", "metrics", "created_at"] {
        assert_eq!(new[key], old[key], "manifest {key} differs");
    }
    for key in ["data_fingerprint", "rows"] {
        assert_eq!(new["provenance"][key], old["provenance"][key], "provenance.{key} differs");
    }
}
