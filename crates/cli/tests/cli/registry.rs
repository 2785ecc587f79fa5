//! The SageMaker Model Registry, against a real SageMaker- and S3-compatible server on loopback
//! (`moto_server`): `registry push|list|approve|reject`, a server following a package group's
//! newest approved version — not ready before one exists, switching under load with zero failed
//! requests when a new version is approved, refusing a corrupt one, rolling back on rejection —
//! and the registry's metrics in `/model/metrics`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::s3::{Moto, status, wait_ready};
use crate::{Load, Server, bin, json_body, model_info, request, root, run_fail, run_json, wait_for_version};

const GROUP: &str = "retail-price-sensitivity-models";

fn registry(moto: &Moto, args: &[&str]) -> Command {
    let mut cmd = bin();
    cmd.arg("registry").args(args).envs(moto.env());
    cmd
}

fn push(moto: &Moto, model: &Path, uri: &str, extra: &[&str]) -> serde_json::Value {
    let model = model.display().to_string();
    run_json(registry(moto, &["push", "--model", &model, "--uri", uri]).args(extra))
}

fn set_status(moto: &Moto, verb: &str, version: u64) -> serde_json::Value {
    run_json(&mut registry(moto, &[verb, "--package-group", GROUP, "--version", &version.to_string()]))
}

fn manifest_version(dir: &Path) -> String {
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest")).expect("json");
    manifest["version"].as_str().expect("version").to_owned()
}

fn registry_version(addr: &str) -> serde_json::Value {
    model_info(addr)["registry"]["version"].clone()
}

#[test]
fn push_publishes_a_verified_archive_with_its_checksum() {
    let moto = Moto::start();
    moto.create_bucket("models");
    let pushed = push(&moto, &root().join("models/default"), "s3://models/exact/model.tar.gz", &[]);
    assert_eq!(pushed["model_data_url"], "s3://models/exact/model.tar.gz");
    let archive = moto.get("models", "exact/model.tar.gz");
    let checksum = String::from_utf8(moto.get("models", "exact/model.tar.gz.sha256")).expect("utf-8");
    assert_eq!(checksum, format!("{}  model.tar.gz\n", pushed["sha256"].as_str().expect("sha256")));
    assert_eq!(pushed["bytes"], archive.len());
    // The archive is reproducible: pushing again gives the same bytes.
    let again = push(&moto, &root().join("models/default"), "s3://models/again/", &[]);
    assert_eq!(again["sha256"], pushed["sha256"]);
    assert_eq!(
        again["model_data_url"],
        format!("s3://models/again/{}/model.tar.gz", manifest_version(&root().join("models/default")))
    );
    // And it serves through the seed's variables.
    let mut env = moto.env();
    env.extend([("MODEL_BUCKET", "models".to_owned()), ("MODEL_KEY", "exact/model.tar.gz".to_owned())]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(&[], &env);
    wait_ready(server.addr());

    // A broken artifact is never published.
    let tmp = tempfile::tempdir().expect("tmp");
    for entry in std::fs::read_dir(root().join("models/default")).expect("dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).expect("copy");
    }
    std::fs::write(tmp.path().join("model.json"), b"{}").expect("write");
    let model = tmp.path().display().to_string();
    let out = run_fail(&mut registry(&moto, &["push", "--model", &model, "--uri", "s3://models/broken/"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model.json"), "{}", String::from_utf8_lossy(&out.stderr));
    // Nor to a bucket that does not exist; nor to a malformed URI.
    let default = root().join("models/default").display().to_string();
    run_fail(&mut registry(&moto, &["push", "--model", &default, "--uri", "s3://no-such-bucket/x/"]));
    let out = run_fail(&mut registry(&moto, &["push", "--model", &default, "--uri", "models/x"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://bucket/key"));
}

#[test]
fn a_server_follows_the_newest_approved_version_under_load() {
    let moto = Moto::start();
    moto.create_bucket("models");
    let tmp = tempfile::tempdir().expect("tmp");
    let v1_dir = root().join("models/default");
    run_json(bin().args(["gen-data", "--baskets", "3000", "--seed", "11", "--out"]).arg(tmp.path().join("d.csv")));
    let v2_dir = tmp.path().join("m2");
    run_json(
        bin().args(["train", "--max-rounds", "4", "--data"]).arg(tmp.path().join("d.csv")).arg("--out").arg(&v2_dir),
    );
    let (v1, v2) = (manifest_version(&v1_dir), manifest_version(&v2_dir));
    assert_ne!(v1, v2);

    // Version 1 registered, pending approval: a server on the group is live, not ready.
    let pushed = push(&moto, &v1_dir, "s3://models/retail/", &["--package-group", GROUP]);
    assert_eq!(
        (pushed["package_version"].as_u64(), pushed["approval_status"].as_str()),
        (Some(1), Some("PendingManualApproval"))
    );
    let env = moto.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("MODEL_PACKAGE_GROUP", GROUP));
    let server = Server::start_with_env(&["--model-poll-seconds", "0.2"], &env);
    let addr = server.addr().to_owned();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status(&addr, "GET", "/ready", ""), "503", "nothing approved yet");
    assert_eq!(status(&addr, "GET", "/health", ""), "200");

    // Approved: it loads and tells where it came from, with the registry's metrics.
    assert_eq!(set_status(&moto, "approve", 1)["approval_status"], "Approved");
    wait_ready(&addr);
    let info = model_info(&addr);
    assert_eq!((info["source"].as_str(), info["version"].as_str()), (Some("registry"), Some(v1.as_str())));
    assert_eq!(info["location"], format!("registry:{GROUP}"));
    assert_eq!(info["registry"]["version"], 1);
    assert_eq!(info["registry"]["approval_status"], "Approved");
    assert_eq!(info["registry"]["model_data_url"], format!("s3://models/retail/{v1}/model.tar.gz"));
    let metrics = json_body(&request(&addr, "GET", "/model/metrics", "").expect("metrics"));
    assert_eq!(metrics["source"], "registry");
    let from_registry = &metrics["registry"]["model_quality"]["multiclass_classification_metrics"];
    assert_eq!(from_registry["accuracy"]["value"], metrics["metrics"]["accuracy"]);
    assert_eq!(from_registry["macro_f1"]["value"], metrics["metrics"]["macro_f1"]);
    let accuracy = metrics["metrics"]["accuracy"].as_f64().expect("accuracy");
    assert_eq!(metrics["registry"]["customer_metadata"]["accuracy"], format!("{accuracy:.4}"));

    // Version 2 registered; listed newest first; approved while clients keep the server busy.
    push(&moto, &v2_dir, "s3://models/retail/", &["--package-group", GROUP]);
    let listed = run_json(&mut registry(&moto, &["list", "--package-group", GROUP, "--json"]));
    let listed: Vec<(u64, &str)> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|p| (p["version"].as_u64().expect("version"), p["approval_status"].as_str().expect("status")))
        .collect();
    assert_eq!(listed, [(2, "PendingManualApproval"), (1, "Approved")]);
    assert_eq!(registry_version(&addr), 1, "a pending version is not served");

    let load = Load::start(&addr, 8);
    while load.done() < 1500 {
        std::thread::sleep(Duration::from_millis(20));
    }
    set_status(&moto, "approve", 2);
    wait_for_version(&addr, &v2);
    let swapped = Instant::now();
    while load.done() < 5000 || swapped.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = load.finish();
    eprintln!(
        "approve under load: {} requests sent, {} answered 200, {} failed",
        report.sent,
        report.answers.len(),
        report.failures.len()
    );
    assert!(report.failures.is_empty(), "failed requests: {:?}", &report.failures[..report.failures.len().min(5)]);
    assert!(report.sent >= 5000);
    assert_eq!(report.answers.len(), report.sent);
    let versions: BTreeSet<&str> = report.answers.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(versions, BTreeSet::from([v1.as_str(), v2.as_str()]), "only whole models answer");
    assert!(report.answers.iter().filter(|(t, _)| *t > swapped + Duration::from_millis(100)).all(|(_, v)| *v == v2));
    assert_eq!(registry_version(&addr), 2);

    // Version 3's upload is corrupted after registration: approving it changes nothing served.
    let pushed = push(&moto, &v1_dir, "s3://models/corrupt/", &["--package-group", GROUP]);
    assert_eq!(pushed["package_version"], 3);
    let corrupt = tmp.path().join("corrupt.tar.gz");
    std::fs::write(&corrupt, b"not a model").expect("write");
    moto.put("models", &format!("corrupt/{v1}/model.tar.gz"), &corrupt);
    set_status(&moto, "approve", 3);
    let start = Instant::now();
    let refused = "retail_api_model_reloads_total{model=\"retail-price-sensitivity\",result=\"refused\"} 1";
    while !request(&addr, "GET", "/metrics", "").expect("metrics").contains(refused) {
        assert!(start.elapsed() < Duration::from_secs(15), "the corrupt version was never refused");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((model_info(&addr)["version"].as_str(), registry_version(&addr)), (Some(v2.as_str()), 2.into()));
    assert_eq!(status(&addr, "POST", "/predict", crate::SEED), "200");

    // Rejecting 3 and 2 rolls back to the newest approved: version 1.
    set_status(&moto, "reject", 3);
    assert_eq!(set_status(&moto, "reject", 2)["approval_status"], "Rejected");
    wait_for_version(&addr, &v1);
    assert_eq!(registry_version(&addr), 1);

    // Unknown versions are clear errors.
    let out = run_fail(&mut registry(&moto, &["approve", "--package-group", GROUP, "--version", "9"]));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no version 9"));
    drop(server);
}
