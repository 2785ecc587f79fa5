//! Drift monitoring through the binary on loopback, with the shipped basket model: baskets
//! generated as its training data was (another seed) keep every PSI under 0.1; the same baskets
//! with SPEND tripled make SPEND drift, on `/model/drift` and on `/metrics`; baskets the model
//! scores as one class shift the predicted-class mix; a hot reload starts an empty window.

use std::fs;
use std::path::Path;

use retail_model::data::read_baskets;
use retail_model::progress::Silent;
use serde_json::{Value, json};

use crate::{Server, bin, json_body, metric, request, root, run_json, wait_for_version};

/// `n` baskets from `gen-data` (seed `seed`) as the API's flat records.
fn baskets(dir: &Path, n: usize, seed: u64) -> Vec<Value> {
    let csv = dir.join(format!("baskets-{seed}.csv"));
    run_json(bin().args(["gen-data", "--baskets", &n.to_string(), "--seed", &seed.to_string(), "--out"]).arg(&csv));
    let (baskets, _) = read_baskets(&csv, &Silent).expect("generated baskets");
    (0..baskets.len())
        .map(|i| {
            let r = baskets.record(i);
            json!({
                "SPEND": r.spend, "QUANTITY": r.quantity, "PROD_CODE_20": r.prod_code_20,
                "PROD_CODE_30": r.prod_code_30, "BASKET_SIZE": r.basket_size, "BASKET_TYPE": r.basket_type,
                "STORE_REGION": r.store_region, "STORE_FORMAT": r.store_format,
            })
        })
        .collect()
}

/// Scores `records` in batches of 100 on `/predict/batch`; the answers.
fn send(addr: &str, records: &[Value]) -> Vec<Value> {
    records
        .chunks(100)
        .flat_map(|chunk| {
            let answer =
                request(addr, "POST", "/predict/batch", &json!({"records": chunk}).to_string()).expect("batch");
            assert!(answer.starts_with("HTTP/1.1 200"), "{}", &answer[..answer.len().min(300)]);
            json_body(&answer)["predictions"].as_array().expect("predictions").clone()
        })
        .collect()
}

fn drift(addr: &str) -> Value {
    let answer = request(addr, "GET", "/model/drift", "").expect("drift");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    json_body(&answer)
}

fn feature<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["features"].as_array().expect("features").iter().find(|f| f["name"] == name).expect(name)
}

#[test]
fn in_distribution_baskets_stay_below_0_1_and_tripled_spend_drifts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let records = baskets(tmp.path(), 2000, 11);
    assert_eq!(records.len(), 2000);

    let steady = Server::start();
    send(steady.addr(), &records);
    let report = drift(steady.addr());
    assert_eq!(report["window"]["rows"], 2000, "{report}");
    for f in report["features"].as_array().expect("features") {
        assert!(f["psi"].as_f64().is_some_and(|psi| psi < 0.1), "{f}");
    }
    assert!(report["prediction"]["psi"].as_f64().is_some_and(|psi| psi < 0.1), "{report}");
    assert_eq!(report["dataset_drift"], false, "{report}");

    let shifted = Server::start();
    let tripled: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            r["SPEND"] = json!(r["SPEND"].as_f64().expect("spend") * 3.0);
            r
        })
        .collect();
    send(shifted.addr(), &tripled);
    let report = drift(shifted.addr());
    let spend = feature(&report, "SPEND");
    assert!(spend["psi"].as_f64().is_some_and(|psi| psi >= 0.2), "{report}");
    assert_eq!((spend["drifted"].as_bool(), spend["status"].as_str()), (Some(true), Some("alert")), "{spend}");
    let gauge = r#"retail_api_feature_drift{model="retail-price-sensitivity",feature="SPEND",statistic="psi"}"#;
    assert!(metric(shifted.addr(), gauge) >= 0.2);
    assert_eq!(metric(shifted.addr(), r#"retail_api_drift_window_rows{model="retail-price-sensitivity"}"#), 2000.0);
}

#[test]
fn baskets_of_one_predicted_class_show_prediction_drift() {
    let tmp = tempfile::tempdir().expect("tmp");
    let records = baskets(tmp.path(), 3000, 12);
    let scorer = Server::start();
    let answers = send(scorer.addr(), &records);
    let up_market: Vec<Value> =
        records.iter().zip(&answers).filter(|(_, a)| a["prediction"] == "UM").map(|(r, _)| r.clone()).collect();
    assert!(up_market.len() > 100, "{} baskets scored UM", up_market.len());

    let server = Server::start();
    let repeated: Vec<Value> = up_market.iter().cycle().take(1000).cloned().collect();
    send(server.addr(), &repeated);
    let prediction = drift(server.addr())["prediction"].clone();
    assert_eq!(
        (prediction["drifted"].as_bool(), prediction["status"].as_str()),
        (Some(true), Some("alert")),
        "{prediction}"
    );
    assert!(prediction["linf"].as_f64().is_some_and(|l| l > 0.3), "{prediction}");
}

#[test]
fn a_hot_reload_starts_an_empty_window() {
    let tmp = tempfile::tempdir().expect("tmp");
    let served = tmp.path().join("served");
    fs::create_dir(&served).expect("mkdir");
    let copy = |from: &Path| {
        for entry in fs::read_dir(from).expect("dir").map(|e| e.expect("entry")) {
            fs::copy(entry.path(), served.join(entry.file_name())).expect("copy");
        }
    };
    copy(&root().join("models/default"));
    let records = baskets(tmp.path(), 4000, 13);
    let next = run_json(
        bin()
            .args(["train", "--max-rounds", "5", "--data"])
            .arg(tmp.path().join("baskets-13.csv"))
            .arg("--out")
            .arg(tmp.path().join("next")),
    );
    let served_arg = served.display().to_string();
    let server = Server::start_with(&["--model-uri", &served_arg, "--model-poll-seconds", "0.2"]);
    send(server.addr(), &records[..600]);
    assert_eq!(drift(server.addr())["window"]["rows"], 600);

    copy(&tmp.path().join("next"));
    let version = next["version"].as_str().expect("version");
    wait_for_version(server.addr(), version);
    let report = drift(server.addr());
    assert_eq!((report["model_version"].as_str(), report["window"]["rows"].as_u64()), (Some(version), Some(0)));
    assert_eq!(feature(&report, "SPEND")["status"], "insufficient_data", "{report}");
    send(server.addr(), &records[600..700]);
    assert_eq!(drift(server.addr())["window"]["rows"], 100, "the new version's window counts from 0");
}
