//! Hot reload from a local model source under load: new versions swap in with zero failed
//! requests; half-written and tampered versions are refused while the current model serves.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Load, SEED, Server, bin, model_info, request, root, run_json, wait_for_version};

fn copy_files(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn served_version(addr: &str) -> String {
    model_info(addr)["version"].as_str().expect("version").to_owned()
}

#[test]
fn a_new_local_model_swaps_in_under_load_and_a_bad_one_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let served = tmp.path().join("served");
    fs::create_dir(&served).expect("mkdir");
    copy_files(&root().join("models/default"), &served);
    // A second, different model.
    run_json(bin().args(["gen-data", "--baskets", "4000", "--seed", "5", "--out"]).arg(tmp.path().join("d.csv")));
    let trained = run_json(
        bin()
            .args(["train", "--max-rounds", "5", "--data"])
            .arg(tmp.path().join("d.csv"))
            .arg("--out")
            .arg(tmp.path().join("m2")),
    );
    let new_version = trained["version"].as_str().expect("version").to_owned();

    let served_arg = served.display().to_string();
    let server = Server::start_with(&["--model-uri", &served_arg, "--model-poll-seconds", "0.2"]);
    let addr = server.addr().to_owned();
    let old_version = served_version(&addr);
    assert_ne!(old_version, new_version);

    let load = Load::start(&addr, 8);
    std::thread::sleep(Duration::from_millis(300));
    // Copy file by file: the poller may see half-written states, which must be refused.
    copy_files(&tmp.path().join("m2"), &served);
    wait_for_version(&addr, &new_version);
    let swapped = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    let report = load.finish();
    let (sent, seen, failures) = (report.sent, report.answers, report.failures);
    assert!(failures.is_empty(), "failed requests during the reload: {:?}", &failures[..failures.len().min(5)]);
    assert_eq!(seen.len(), sent);
    let versions: BTreeSet<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(versions, BTreeSet::from([old_version.as_str(), new_version.as_str()]), "only whole models answer");
    // Requests sent well after the swap are answered by the new model.
    assert!(seen.iter().filter(|(t, _)| *t > swapped + Duration::from_millis(100)).all(|(_, v)| *v == new_version));
    assert!(sent > 500, "{sent} requests sent");

    // A tampered version is refused; the current one keeps serving.
    let model = served.join("model.json");
    let mut bytes = fs::read(&model).expect("read");
    let i = bytes.iter().position(|b| b.is_ascii_digit()).expect("digit");
    bytes[i] = if bytes[i] == b'1' { b'2' } else { b'1' };
    fs::write(&model, bytes).expect("write");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(served_version(&addr), new_version);
    let metrics = request(&addr, "GET", "/metrics", "").expect("metrics");
    assert!(metrics.contains("retail_api_model_reloads_total{result=\"refused\"}"), "refusal counted");
    assert!(metrics.contains("retail_api_model_reloads_total{result=\"loaded\"} 1"), "one successful reload");
    let predict = request(&addr, "POST", "/predict", SEED).expect("predict");
    assert!(predict.starts_with("HTTP/1.1 200"));
    drop(server);
}
