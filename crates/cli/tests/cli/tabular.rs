//! Tabular models through the binary: each dataset that ships inside scikit-learn, exported to
//! CSV by the test venv's scikit-learn, is trained with `train --label`, evaluated, served under
//! its name and scored through `/models/{name}/predict` by name and by array; and the seed's
//! `/predict-single` curl answers out of the box.

use std::path::Path;
use std::process::Command;

use crate::s3::venv_bin;
use crate::{Server, bin, request, root, run_fail, run_json};

/// Exports the scikit-learn datasets into `dir`; one JSON line per dataset.
fn export(dir: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(venv_bin("python"))
        .arg(root().join("tests/tabular/sklearn_datasets.py"))
        .arg(dir)
        .output()
        .expect("run python");
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

#[test]
fn every_scikit_learn_dataset_trains_evaluates_and_serves_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let datasets = export(tmp.path());
    assert_eq!(datasets.len(), 5);
    let mut models = Vec::new();
    for d in &datasets {
        let name = d["dataset"].as_str().expect("name");
        let csv = tmp.path().join(format!("{name}.csv"));
        let out = tmp.path().join(name);
        let trained = run_json(bin().args(["train", "--label", "target", "--data"]).arg(&csv).arg("--out").arg(&out));
        let m = &trained["test_metrics"];
        if d["task"] == "classification" {
            let floor = if name == "wine" || name == "iris" { 0.8 } else { 0.9 };
            assert!(m["accuracy"].as_f64().is_some_and(|a| a > floor), "{name}: {trained}");
        } else {
            assert!(m["r2"].as_f64().is_some_and(|r2| r2 > 0.2), "{name}: {trained}");
        }
        let card = std::fs::read_to_string(out.join("card.md")).expect("card.md");
        let chart = std::fs::read_to_string(out.join("importance.svg")).expect("importance.svg");
        assert!(card.contains("![Feature importance](importance.svg)"), "{name}: {card}");
        assert!(chart.starts_with("<svg") && chart.contains("Feature importance"), "{name}: {chart}");
        let evaluated = run_json(bin().args(["evaluate", "--model"]).arg(&out).arg("--data").arg(&csv));
        let key = if d["task"] == "classification" { "accuracy" } else { "rmse" };
        assert!(evaluated["metrics"][key].is_f64(), "{name}: {evaluated}");
        models.push(format!("{name}={}", out.display()));
    }
    let server = Server::start_with_env(&[], &[("MODELS", &models.join(","))]);
    for d in &datasets {
        let name = d["dataset"].as_str().expect("name");
        let first: Vec<f64> = serde_json::from_value(d["first"].clone()).expect("first row");
        let body = serde_json::json!({ "features": first }).to_string();
        let answer = request(server.addr(), "POST", &format!("/models/{name}/predict"), &body).expect("predict");
        assert!(answer.starts_with("HTTP/1.1 200"), "{name}: {answer}");
        let json = crate::json_body(&answer);
        if d["task"] == "classification" {
            assert!(json["prediction"].is_string() && json["probabilities"].is_object(), "{name}: {json}");
        } else {
            assert!(json["prediction"].is_f64(), "{name}: {json}");
        }
        let card = request(server.addr(), "GET", &format!("/models/{name}/card"), "").expect("card");
        assert!(card.starts_with("HTTP/1.1 200"), "{name}: {card}");
        assert!(
            card.contains("<img src=\"data:image/svg+xml;base64,PHN2Zy"),
            "{name}: the card shows its importance chart"
        );
    }
}

#[test]
fn train_refuses_a_bad_table_with_line_and_column() {
    let tmp = tempfile::tempdir().expect("tmp");
    let csv = tmp.path().join("bad.csv");
    let mut text = "a,b,y\n".to_owned();
    (0..50).for_each(|i| text.push_str(&format!("{i},{},{}\n", if i == 20 { "3 kg" } else { "3" }, i % 2)));
    std::fs::write(&csv, text).expect("write");
    let out =
        run_fail(bin().args(["train", "--label", "y", "--data"]).arg(&csv).arg("--out").arg(tmp.path().join("m")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 22, column \"b\": \"3 kg\" is not a number"), "{stderr}");
    assert!(!tmp.path().join("m").exists());
}

#[test]
fn the_seeds_predict_single_curl_answers_out_of_the_box() {
    let server = Server::start();
    let body = r#"{"features": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}"#;
    let answer = request(server.addr(), "POST", "/predict-single", body).expect("predict-single");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let json = crate::json_body(&answer);
    assert!(json["prediction"].is_string(), "{json}");
    assert_eq!(json["warnings"], serde_json::json!([]), "the seed's vector is inside every training range");
}
