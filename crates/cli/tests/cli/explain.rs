//! Explanations against the reference implementation: a LightGBM multiclass model and a binary
//! scikit-learn `GradientBoostingClassifier`, trained in the test venv
//! (`tests/explain/shap_reference.py`), exported to ONNX and imported with `import-onnx --label`
//! and their training table as `--data`: our contributions and base values equal
//! `shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")`'s within 1e-6.

use std::path::Path;
use std::process::Command;

use retail_model::artifact::Artifact;

use crate::s3::venv_bin;
use crate::{bin, root, run_json};

/// Largest difference allowed. ONNX stores leaf values as float32 (shap reads the models' own
/// float64 ones), which moves contributions by a few 1e-8 over these models' trees.
const TOLERANCE: f64 = 1e-6;

fn references(dir: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(venv_bin("python"))
        .arg(root().join("tests/explain/shap_reference.py"))
        .arg(dir)
        .output()
        .expect("run python");
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("json line")).collect()
}

/// The feature rows of a CSV whose last column is the label.
fn rows(csv: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(csv).expect("csv");
    text.lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            cells[..cells.len() - 1].iter().map(|c| c.parse().expect("number")).collect()
        })
        .collect()
}

fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= TOLERANCE
}

#[test]
fn contributions_equal_shaps_tree_path_dependent_values_for_lightgbm_and_scikit_learn() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cases = references(tmp.path());
    assert_eq!(cases.len(), 2);
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let file = |key: &str| tmp.path().join(case[key].as_str().expect("file"));
        let out = tmp.path().join(format!("{name}-model"));
        let mut cmd = bin();
        cmd.args(["import-onnx", "--label", "label", "--name", name, "--onnx"]).arg(file("onnx"));
        cmd.arg("--data").arg(file("csv")).arg("--out").arg(&out);
        run_json(&mut cmd);
        let artifact = Artifact::load(&out).expect("imported artifact loads");
        let explainer = artifact.explainer.as_ref().expect("import-onnx --data computed covers");
        let reference: serde_json::Value =
            serde_json::from_slice(&std::fs::read(file("reference")).expect("reference")).expect("json");
        let expected: Vec<f64> = serde_json::from_value(reference["expected"].clone()).expect("expected");
        let shap: Vec<Vec<Vec<f64>>> = serde_json::from_value(reference["shap"].clone()).expect("shap");
        // A binary model's one reference output is the positive class (class 1 of our two).
        let first = if expected.len() == 1 { 1 } else { 0 };
        let mut worst = 0.0f64;
        for (row, theirs) in rows(&file("csv")).iter().zip(&shap) {
            let ours = explainer.explain(row);
            for (c, theirs) in theirs.iter().enumerate() {
                assert!(
                    close(ours.base[first + c], expected[c]),
                    "{name} base {c}: {} vs {}",
                    ours.base[first + c],
                    expected[c]
                );
                for (f, (o, t)) in ours.of_output(first + c).iter().zip(theirs).enumerate() {
                    worst = worst.max((o - t).abs());
                    assert!(close(*o, *t), "{name} row {row:?} class {c} feature {f}: ours {o}, shap {t}");
                }
            }
        }
        eprintln!("{name}: {} rows, largest difference from shap {worst:e}", shap.len());
    }
}

/// Softmax of `margins`.
fn softmax(margins: &[f64]) -> Vec<f64> {
    let top = margins.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = margins.iter().map(|m| (m - top).exp()).sum();
    margins.iter().map(|m| (m - top).exp() / total).collect()
}

#[test]
fn issue17_predict_explain_writes_contribution_columns_and_explanations() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    run_json(bin().args(["gen-data", "--baskets", "50", "--seed", "3", "--out"]).arg(p("d.csv")));
    let out = bin().args(["predict", "--explain", "--input"]).arg(p("d.csv")).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).expect("utf8");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("{name} in {header:?}"));
    let fields = [
        "SPEND",
        "QUANTITY",
        "PROD_CODE_20",
        "PROD_CODE_30",
        "BASKET_SIZE",
        "BASKET_TYPE",
        "STORE_REGION",
        "STORE_FORMAT",
    ];
    let mut rows = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let number = |name: &str| cells[column(name)].parse::<f64>().expect("number");
        let margins: Vec<f64> = ["LA", "MM", "UM"]
            .iter()
            .map(|c| number(&format!("BASE_{c}")) + fields.iter().map(|f| number(&format!("C_{c}_{f}"))).sum::<f64>())
            .collect();
        for (c, p) in ["LA", "MM", "UM"].iter().zip(softmax(&margins)) {
            assert!((number(&format!("P_{c}")) - p).abs() < 1e-9, "{line}: P_{c}");
        }
        rows += 1;
    }
    assert_eq!(rows, 50);
    let seed = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;
    std::fs::write(p("r.jsonl"), seed).expect("write");
    let out = bin().args(["predict", "--explain", "--input"]).arg(p("r.jsonl")).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json line");
    assert_eq!(answer["explanation"]["space"], "log_odds", "{answer}");
    let plain = bin().args(["predict", "--input"]).arg(p("r.jsonl")).output().expect("run");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("explanation"));
}
