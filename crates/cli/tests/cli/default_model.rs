//! The committed default model is reproducible from its documented command.

use std::process::Command;

use crate::{bin, root};

#[test]
fn train_default_model_script_reproduces_the_committed_model_exactly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("default");
    let status = Command::new(root().join("scripts/train-default-model.sh"))
        .arg(&out)
        .env("RETAIL_API_BIN", bin().get_program())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run script");
    assert!(status.success());
    let committed = root().join("models/default");
    let read = |dir: &std::path::Path, file: &str| std::fs::read(dir.join(file)).expect(file);
    assert!(
        read(&out, "model.json") == read(&committed, "model.json"),
        "model.json differs from the committed one: rerun scripts/train-default-model.sh and commit models/default"
    );
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
    let out = tmp.path().join("sales-forecast");
    let status = Command::new(root().join("scripts/train-default-forecast.sh"))
        .arg(&out)
        .env("RETAIL_API_BIN", bin().get_program())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run script");
    assert!(status.success());
    let committed = root().join("models/sales-forecast");
    let read = |dir: &std::path::Path, file: &str| std::fs::read(dir.join(file)).expect(file);
    for file in ["model.json", "forecast.json", "predicted_vs_actual.svg", "residuals.svg"] {
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
