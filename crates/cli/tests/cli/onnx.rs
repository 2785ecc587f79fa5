//! Bring your own model: `import-onnx` turns the committed skl2onnx and onnxmltools fixtures into artifacts,
//! `serve` answers like onnxruntime (goldens within 1e-5), and bad models are refused clearly.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{Server, bin, request, root, run_fail, run_json};

fn fixture(name: &str) -> PathBuf {
    root().join("crates/model/tests/fixtures/onnx").join(name)
}

/// The JSON body of an HTTP answer.
fn body(answer: &str) -> serde_json::Value {
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    serde_json::from_str(body).expect("JSON body")
}

fn import(data: &Path, onnx: &Path, inputs: &Path, out: &Path) -> std::process::Command {
    let mut cmd = bin();
    cmd.arg("import-onnx").arg("--onnx").arg(onnx).arg("--inputs").arg(inputs).arg("--data").arg(data);
    cmd.arg("--out").arg(out);
    cmd
}

#[test]
fn imported_onnx_models_serve_onnxruntime_answers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("d.csv");
    run_json(bin().args(["gen-data", "--baskets", "3000", "--seed", "8", "--out"]).arg(&data));
    // skl2onnx GradientBoosting (string labels), and onnxmltools LightGBM (integer labels, named
    // by the mapping's "classes").
    serves_onnxruntime_answers(&data, "gbdt", "inputs.json", "skl2onnx 1.20.0");
    serves_onnxruntime_answers(&data, "lgbm", "inputs_int_labels.json", "OnnxMLTools 1.16.0");
}

fn serves_onnxruntime_answers(data: &Path, model: &str, inputs: &str, producer: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let artifact = tmp.path().join("onnx-model");
    let onnx = fixture(&format!("{model}.onnx"));
    let imported = run_json(&mut import(data, &onnx, &fixture(inputs), &artifact));
    assert_eq!(imported["model"]["kind"], "onnx");
    assert!(imported["metrics"]["accuracy"].as_f64().expect("accuracy") > 0.5);
    let version = imported["version"].as_str().expect("version").to_owned();

    let server = Server::start_with(&["--model-uri", artifact.to_str().expect("utf8 path")]);
    let info = body(&request(server.addr(), "GET", "/model/info", "").expect("info"));
    assert_eq!(info["version"], version.as_str());
    assert_eq!(info["model_format"]["kind"], "onnx");
    assert_eq!(info["model_format"]["inputs"]["columns"].as_array().expect("columns").len(), 56);
    assert_eq!(info["training"]["params"]["onnx"]["producer"], producer);

    let golden: serde_json::Value =
        serde_json::from_slice(&fs::read(fixture("golden.json")).expect("golden")).expect("json");
    let records = golden["records"].as_array().expect("records");
    let expected = golden["probabilities"][model].as_array().expect("goldens of the model");
    let batch = serde_json::json!({ "records": records }).to_string();
    let answer = body(&request(server.addr(), "POST", "/predict/batch", &batch).expect("batch"));
    let predictions = answer["predictions"].as_array().expect("predictions");
    assert_eq!(predictions.len(), records.len());
    let mut worst: f64 = 0.0;
    for (prediction, p) in predictions.iter().zip(expected) {
        for (class, e) in ["LA", "MM", "UM"].iter().zip(p.as_array().expect("row")) {
            let got = prediction["probabilities"][class].as_f64().expect("probability");
            worst = worst.max((got - e.as_f64().expect("number")).abs());
        }
    }
    assert!(worst <= 1e-5, "{model}: max |Δp| {worst:e} against onnxruntime");
    // Single /predict too, on a record with an unseen region (scored, and reported).
    let unseen = records.iter().position(|r| r["STORE_REGION"] == "MARS").expect("an unseen record");
    let single = body(&request(server.addr(), "POST", "/predict", &records[unseen].to_string()).expect("predict"));
    assert!(single["warnings"].to_string().contains("MARS"), "{single}");
    let p = expected[unseen].as_array().expect("row");
    assert!((single["probabilities"]["UM"].as_f64().expect("UM") - p[2].as_f64().expect("UM")).abs() <= 1e-5);
}

#[test]
fn import_onnx_refuses_what_it_cannot_serve_with_the_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("d.csv");
    run_json(bin().args(["gen-data", "--baskets", "500", "--seed", "9", "--out"]).arg(&data));
    let out = tmp.path().join("m");
    let inputs = fixture("inputs.json");
    let refused = |onnx: &Path, inputs: &Path, reason: &str| {
        let failed = run_fail(&mut import(&data, onnx, inputs, &out));
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(stderr.contains(reason), "expected {reason:?} in:\n{stderr}");
        assert!(!out.exists(), "nothing is written");
    };
    refused(&fixture("linear.onnx"), &inputs, "operator ai.onnx.ml.LinearClassifier");
    refused(&fixture("zipmap.onnx"), &inputs, "options={'zipmap': False}");
    refused(&fixture("other_classes.onnx"), &inputs, "class labels [\"high\", \"low\", \"mid\"]");
    let typo = tmp.path().join("typo.json");
    let text = fs::read_to_string(&inputs).expect("inputs");
    fs::write(&typo, text.replacen("\"STORE_REGION\"", "\"STORE_REGON\"", 1)).expect("write");
    refused(&fixture("gbdt.onnx"), &typo, "(STORE_REGON): unknown feature");

    // A tampered ONNX file in an artifact is refused on load, naming the file.
    run_json(&mut import(&data, &fixture("rf.onnx"), &inputs, &out));
    let onnx = out.join("model.onnx");
    let mut bytes = fs::read(&onnx).expect("read");
    bytes[100] ^= 0x40;
    fs::write(&onnx, bytes).expect("write");
    let failed = run_fail(bin().args(["evaluate", "--model"]).arg(&out).arg("--data").arg(&data));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("model.onnx: sha256"), "{stderr}");
}
