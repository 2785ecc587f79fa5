//! Hot reload from a local model source under load: new versions swap in with zero failed
//! requests; half-written and tampered versions are refused while the current model serves.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Load, SEED, Server, bin, json_body, model_info, request, root, run_json, wait_for_version};

/// The name a single-model server serves its model under.
const MODEL: &str = "retail-price-sensitivity";

fn copy_files(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("dir") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn served_version(addr: &str) -> String {
    model_info(addr)["version"].as_str().expect("version").to_owned()
}

/// A copy of the default model in `dir/served`, and a second, different model trained into
/// `dir/m2` (its version).
fn served_copy_and_another_model(dir: &Path) -> (std::path::PathBuf, String) {
    let served = dir.join("served");
    fs::create_dir(&served).expect("mkdir");
    copy_files(&root().join("models/default"), &served);
    run_json(bin().args(["gen-data", "--baskets", "4000", "--seed", "5", "--out"]).arg(dir.join("d.csv")));
    let trained = run_json(
        bin().args(["train", "--max-rounds", "5", "--data"]).arg(dir.join("d.csv")).arg("--out").arg(dir.join("m2")),
    );
    (served, trained["version"].as_str().expect("version").to_owned())
}

#[test]
fn a_new_local_model_swaps_in_under_load_and_a_bad_one_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (served, new_version) = served_copy_and_another_model(tmp.path());

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
    let reloads = |result: &str| format!("retail_api_model_reloads_total{{model=\"{MODEL}\",result=\"{result}\"}}");
    assert!(metrics.contains(&reloads("refused")), "refusal counted");
    assert!(metrics.contains(&format!("{} 1", reloads("loaded"))), "one successful reload");
    let predict = request(&addr, "POST", "/predict", SEED).expect("predict");
    assert!(predict.starts_with("HTTP/1.1 200"));
    drop(server);
}

#[test]
fn one_model_of_several_swaps_in_under_load_while_the_other_keeps_serving() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (served, new_version) = served_copy_and_another_model(tmp.path());
    let config = tmp.path().join("models.toml");
    let toml = format!(
        "default = \"steady\"\n\n[[model]]\nname = \"steady\"\nsource = \"embedded\"\n\n[[model]]\nname = \"moving\"\nsource = \"{}\"\npoll_seconds = 0.2\n",
        served.display()
    );
    fs::write(&config, toml).expect("config");
    let server = Server::start_with_env(&[], &[("MODELS_CONFIG", config.to_str().expect("utf-8"))]);
    let addr = server.addr().to_owned();
    let info = |name: &str| json_body(&request(&addr, "GET", &format!("/models/{name}/info"), "").expect("info"));
    let steady_version = info("steady")["version"].as_str().expect("version").to_owned();
    let old_version = info("moving")["version"].as_str().expect("version").to_owned();
    assert_ne!(old_version, new_version);

    let (steady, moving) =
        (Load::start_on(&addr, "/models/steady/predict", 4), Load::start_on(&addr, "/models/moving/predict", 4));
    std::thread::sleep(Duration::from_millis(300));
    copy_files(&tmp.path().join("m2"), &served);
    let start = Instant::now();
    while info("moving")["version"] != new_version.as_str() {
        assert!(start.elapsed() < Duration::from_secs(20), "version {new_version} never served by model moving");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let (steady, moving) = (steady.finish(), moving.finish());
    for (name, report) in [("steady", &steady), ("moving", &moving)] {
        assert!(
            report.failures.is_empty(),
            "{name}: failed requests during the reload: {:?}",
            &report.failures[..report.failures.len().min(5)]
        );
        assert!(report.sent > 200, "{name}: {} requests sent", report.sent);
    }
    let versions = |r: &crate::LoadReport| r.answers.iter().map(|(_, v)| v.clone()).collect::<BTreeSet<String>>();
    assert_eq!(versions(&steady), BTreeSet::from([steady_version.clone()]), "the other model is untouched");
    assert_eq!(versions(&moving), BTreeSet::from([old_version, new_version.clone()]));
    assert_eq!(model_info(&addr)["version"], steady_version.as_str(), "the default is the steady model");
    let models = json_body(&request(&addr, "GET", "/models", "").expect("models"));
    assert_eq!(models["default"], "steady");
    assert_eq!(models["models"][1]["version"], new_version.as_str());
    let metrics = request(&addr, "GET", "/metrics", "").expect("metrics");
    assert!(
        metrics.contains("retail_api_model_reloads_total{model=\"moving\",result=\"loaded\"} 1"),
        "one reload of moving"
    );
    assert!(!metrics.contains("retail_api_model_reloads_total{model=\"steady\""), "no reload of steady");
    drop(server);
}
