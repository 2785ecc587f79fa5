//! Everyday CLI use: output paths checked before any work and never overwritten without
//! `--force`, a human `evaluate` summary, physical CSV line numbers, one line per error cause,
//! `serve --help` and logging, AWS credential errors, and `/version` of a local build.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::{Server, bin, request, root, run_fail, run_json};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command expected to succeed; returns its output.
fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(out.status.success(), "{cmd:?} failed:\n{}", stderr(&out));
    out
}

fn gen_baskets(out: &Path, baskets: &str, seed: &str, truth: Option<&Path>) {
    let mut cmd = bin();
    cmd.args(["gen-data", "--baskets", baskets, "--seed", seed, "--out"]).arg(out);
    if let Some(truth) = truth {
        cmd.arg("--truth").arg(truth);
    }
    run_ok(&mut cmd);
}

#[test]
fn train_refuses_an_existing_output_before_reading_any_data() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("m");
    fs::create_dir(&out).expect("mkdir");
    fs::write(out.join("keep.txt"), "mine").expect("write");
    // The data file does not exist: a refusal that names `--out` proves nothing was read first.
    let refused = run_fail(bin().args(["train", "--data"]).arg(tmp.path().join("missing.csv")).arg("--out").arg(&out));
    let message = stderr(&refused);
    assert!(message.contains(&format!("{} already exists", out.display())), "{message}");
    assert!(message.contains("--force") && !message.contains("missing.csv"), "{message}");
    assert_eq!(fs::read_to_string(out.join("keep.txt")).expect("kept"), "mine");
    // An existing empty directory is no one's work: training writes into it.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    gen_baskets(&tmp.path().join("d.csv"), "600", "1", None);
    run_json(
        bin().args(["train", "--max-rounds", "3", "--data"]).arg(tmp.path().join("d.csv")).arg("--out").arg(&empty),
    );
    assert!(empty.join("manifest.json").is_file());
}

/// Asserts `cmd` refuses to replace `path` (naming it and `--force`) and leaves it as it was.
fn refuses_to_overwrite(cmd: &mut Command, path: &Path) {
    let before = fs::read(path).unwrap_or_default();
    let message = stderr(&run_fail(cmd));
    let want = format!("{} already exists; pass --force to replace it", path.display());
    assert!(message.contains(&want), "{cmd:?}: {message}");
    assert_eq!(fs::read(path).unwrap_or_default(), before, "{} changed", path.display());
}

#[test]
fn writing_flags_refuse_to_overwrite_without_force() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    gen_baskets(&p("d.csv"), "600", "1", Some(&p("t.csv")));
    refuses_to_overwrite(bin().args(["gen-data", "--baskets", "50", "--out"]).arg(p("d.csv")), &p("d.csv"));
    fs::write(p("other.csv"), "x").expect("write");
    refuses_to_overwrite(
        bin().args(["gen-data", "--baskets", "50", "--out"]).arg(p("new.csv")).arg("--truth").arg(p("other.csv")),
        &p("other.csv"),
    );
    assert!(!p("new.csv").exists(), "nothing written when one output is refused");
    run_ok(bin().args(["gen-data", "--baskets", "50", "--force", "--out"]).arg(p("other.csv")));

    fs::write(p("scores.csv"), "old").expect("write");
    let model = root().join("models/default");
    refuses_to_overwrite(
        bin()
            .arg("predict")
            .arg("--model")
            .arg(&model)
            .arg("--input")
            .arg(p("d.csv"))
            .arg("--out")
            .arg(p("scores.csv")),
        &p("scores.csv"),
    );
    let evaluate = |extra: &[&std::ffi::OsStr]| {
        let mut cmd = bin();
        cmd.arg("evaluate").arg("--model").arg(&model).arg("--data").arg(p("d.csv")).args(extra);
        cmd
    };
    fs::create_dir(p("report")).expect("mkdir");
    fs::write(p("report/card.md"), "old").expect("write");
    refuses_to_overwrite(&mut evaluate(&["--report".as_ref(), p("report").as_os_str()]), &p("report"));
    assert_eq!(fs::read_to_string(p("report/card.md")).expect("card"), "old");
    fs::write(p("metrics.json"), "old").expect("write");
    refuses_to_overwrite(&mut evaluate(&["--json".as_ref(), p("metrics.json").as_os_str()]), &p("metrics.json"));
    let forced = run_ok(&mut evaluate(&[
        "--force".as_ref(),
        "--json".as_ref(),
        p("metrics.json").as_os_str(),
        "--report".as_ref(),
        p("report").as_os_str(),
    ]));
    assert!(forced.stdout.is_empty(), "with --json FILE stdout stays empty");
    let written: serde_json::Value = serde_json::from_slice(&fs::read(p("metrics.json")).expect("json")).expect("JSON");
    assert!(written["metrics"]["accuracy"].is_f64(), "{written}");
    assert_ne!(fs::read_to_string(p("report/card.md")).expect("card"), "old");
}

#[test]
fn gen_data_names_its_class_counts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let summary = run_json(bin().args(["gen-data", "--baskets", "500", "--out"]).arg(tmp.path().join("d.csv")));
    let labels = summary["labels"].as_object().expect("labels by class");
    let total: u64 = ["LA", "MM", "UM", "XX"].iter().map(|c| labels[*c].as_u64().expect("count")).sum();
    assert_eq!(total, 500, "{summary}");
}

#[test]
fn evaluate_summarises_baskets_on_stderr_against_the_bayes_ceiling() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    gen_baskets(&p("h.csv"), "3000", "4", Some(&p("ht.csv")));
    let out = run_ok(
        bin()
            .arg("evaluate")
            .arg("--model")
            .arg(root().join("models/default"))
            .args(["--data".as_ref(), p("h.csv").as_os_str(), "--truth".as_ref(), p("ht.csv").as_os_str()])
            .arg("--report")
            .arg(p("report")),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let summary = stderr(&out);
    let accuracy = json["metrics"]["accuracy"].as_f64().expect("accuracy") * 100.0;
    let ceiling = json["bayes"]["accuracy"].as_f64().expect("ceiling") * 100.0;
    let line = format!("accuracy  {accuracy:.2}%  Bayes ceiling {ceiling:.2}%");
    assert!(summary.contains(&line), "{line:?} in\n{summary}");
    assert!(summary.contains("macro-F1") && summary.contains("precision") && summary.contains("recall"), "{summary}");
    assert!(summary.contains("confusion (rows: true class, columns: predicted)"), "{summary}");
    for class in ["LA", "MM", "UM"] {
        assert!(summary.lines().filter(|l| l.trim_start().starts_with(class)).count() >= 2, "{class}: {summary}");
    }
    assert!(summary.contains(&format!("report written to {}", p("report").display())), "{summary}");
    assert!(summary.lines().count() < 30, "a short summary:\n{summary}");
}

#[test]
fn evaluate_summarises_forecasts_and_tabular_models() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    run_ok(
        bin()
            .args(["gen-data", "--kind", "sales", "--stores", "2", "--products", "5", "--days", "60", "--out"])
            .arg(p("s.csv"))
            .arg("--truth")
            .arg(p("st.csv")),
    );
    let out = run_ok(bin().arg("evaluate").arg("--model").arg(root().join("models/sales-forecast")).args([
        "--data".as_ref(),
        p("s.csv").as_os_str(),
        "--truth".as_ref(),
        p("st.csv").as_os_str(),
    ]));
    let summary = stderr(&out);
    assert!(
        summary.contains("Poisson deviance") && summary.contains("optimum") && summary.contains("WAPE"),
        "{summary}"
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("JSON on stdout");

    run_ok(bin().args(["gen-data", "--kind", "tabular", "--rows", "400", "--out"]).arg(p("t.csv")));
    let out = run_ok(
        bin()
            .arg("evaluate")
            .arg("--model")
            .arg(root().join("models/tabular"))
            .arg("--data")
            .arg(p("t.csv"))
            .arg("--json")
            .arg(p("t.json")),
    );
    let summary = stderr(&out);
    assert!(summary.contains("accuracy") && summary.contains("macro-F1"), "{summary}");
    assert!(summary.contains("confusion (rows: true class, columns: predicted)"), "{summary}");
    assert!(summary.contains(&format!("metrics written to {}", p("t.json").display())), "{summary}");
}

/// The lines of `text` with `\r\n` endings, `field` of `line` (1-based, header = 1) replaced.
fn crlf_with_bad_value(text: &str, line: usize, field: usize, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut fields: Vec<&str> = lines[line - 1].split(',').collect();
    fields[field] = value;
    lines[line - 1] = fields.join(",");
    lines.iter().map(|l| format!("{l}\r\n")).collect()
}

#[test]
fn csv_errors_name_the_physical_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    gen_baskets(&p("d.csv"), "100", "1", Some(&p("t.csv")));
    let data = fs::read_to_string(p("d.csv")).expect("data");
    fs::write(p("bad.csv"), crlf_with_bad_value(&data, 10, 4, "abc")).expect("write");
    let message = stderr(&run_fail(bin().args(["train", "--data"]).arg(p("bad.csv")).arg("--out").arg(p("m"))));
    assert!(message.contains("line 10, column QUANTITY"), "{message}");
    // A blank line before the bad one is a line too.
    let mut blank: Vec<&str> = data.lines().collect();
    blank.insert(3, "");
    fs::write(p("blank.csv"), crlf_with_bad_value(&blank.join("\n"), 10, 4, "abc")).expect("write");
    let message = stderr(&run_fail(bin().args(["train", "--data"]).arg(p("blank.csv")).arg("--out").arg(p("m"))));
    assert!(message.contains("line 10, column QUANTITY"), "{message}");
    let truth = fs::read_to_string(p("t.csv")).expect("truth");
    fs::write(p("badt.csv"), crlf_with_bad_value(&truth, 10, 1, "abc")).expect("write");
    let evaluate = bin()
        .arg("evaluate")
        .arg("--model")
        .arg(root().join("models/default"))
        .args(["--data".as_ref(), p("d.csv").as_os_str(), "--truth".as_ref(), p("badt.csv").as_os_str()])
        .output()
        .expect("spawn");
    assert!(stderr(&evaluate).contains("line 10, column P_LA"), "{}", stderr(&evaluate));

    run_ok(
        bin()
            .args(["gen-data", "--kind", "sales", "--stores", "1", "--products", "2", "--days", "20", "--out"])
            .arg(p("s.csv")),
    );
    let sales = fs::read_to_string(p("s.csv")).expect("sales");
    fs::write(p("bads.csv"), crlf_with_bad_value(&sales, 10, 3, "abc")).expect("write");
    let message = stderr(&run_fail(bin().args(["train", "--data"]).arg(p("bads.csv")).arg("--out").arg(p("m"))));
    assert!(message.contains("line 10, column price"), "{message}");

    run_ok(bin().args(["gen-data", "--kind", "tabular", "--rows", "50", "--out"]).arg(p("tab.csv")));
    let table = fs::read_to_string(p("tab.csv")).expect("table");
    fs::write(p("badtab.csv"), crlf_with_bad_value(&table, 10, 0, "abc")).expect("write");
    let message = stderr(&run_fail(
        bin()
            .args(["train", "--label", "label", "--numeric", "f1", "--data"])
            .arg(p("badtab.csv"))
            .arg("--out")
            .arg(p("m")),
    ));
    assert!(message.contains("line 10, column \"f1\""), "{message}");
}

#[test]
fn a_missing_file_is_one_line_per_cause() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        let out = bin().args(args).current_dir(tmp.path()).env("RUST_BACKTRACE", "1").output().expect("spawn");
        assert!(!out.status.success());
        stderr(&out)
    };
    let enoent = "No such file or directory (os error 2)";
    assert_eq!(
        run(&["train", "--data", "nope.csv", "--out", "m"]),
        format!("Error: training from nope.csv failed\n  caused by: {enoent}\n")
    );
    assert_eq!(
        run(&["evaluate", "--model", "nope", "--data", "nope.csv"]),
        format!("Error: cannot load model nope\n  caused by: {enoent}\n")
    );
    let default = root().join("models/default");
    let default = default.to_str().expect("utf-8 path");
    assert_eq!(
        run(&["evaluate", "--model", default, "--data", "nope.csv"]),
        format!("Error: cannot evaluate on nope.csv\n  caused by: {enoent}\n")
    );
    assert_eq!(
        run(&["predict", "--input", "nope.csv"]),
        format!("Error: cannot read nope.csv\n  caused by: {enoent}\n")
    );
    assert_eq!(
        run(&["gen-data", "--baskets", "10", "--out", "no/such/dir/d.csv"]),
        "Error: cannot write no/such/dir/d.csv: no directory no/such/dir\n"
    );
}

#[test]
fn serve_help_documents_logging_and_body_limits() {
    let out = run_ok(bin().args(["serve", "--help"]));
    let help = String::from_utf8_lossy(&out.stdout);
    for name in ["LOG_FORMAT", "RUST_LOG", "MAX_BODY_BYTES", "MAX_BATCH_BODY_BYTES"] {
        assert!(help.contains(name), "{name} in\n{help}");
    }
}

#[test]
fn text_logs_to_a_pipe_have_no_colour_codes() {
    let mut child = bin()
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let serving = lines.by_ref().map_while(Result::ok).find(|l| l.contains("serving"));
    child.kill().expect("kill");
    child.wait().expect("wait");
    let serving = serving.expect("a serving line");
    assert!(!serving.contains('\u{1b}'), "{serving:?}");
}

#[test]
fn s3_retries_are_not_logged_at_info() {
    let port = crate::s3::free_port();
    let env = [
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("MODEL_URI", "s3://models/m/model.tar.gz".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(&[], &env);
    // The first load (with its retries of the refused connection) fails within a few seconds.
    let start = Instant::now();
    while !server.log_lines().iter().any(|l| l["level"] == "WARN") && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let lines = server.log_lines();
    assert!(lines.iter().any(|l| l["level"] == "WARN"), "the load failed: {lines:?}");
    let retries: Vec<_> =
        lines.iter().filter(|l| l["target"].as_str().is_some_and(|t| t.starts_with("object_store"))).collect();
    assert!(retries.is_empty(), "{retries:?}");
}

#[test]
fn registry_without_credentials_names_the_sources_it_tried() {
    let home = tempfile::tempdir().expect("home");
    let mut cmd = bin();
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("AWS_")) {
            cmd.env_remove(name);
        }
    }
    let out = run_fail(
        cmd.args(["registry", "list", "--package-group", "g"])
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{}", crate::s3::free_port())),
    );
    let message = stderr(&out);
    assert!(message.contains("no AWS credentials found (tried "), "{message}");
    for source in [
        "AWS_ACCESS_KEY_ID",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS",
        ".aws/credentials",
        "instance metadata",
    ] {
        assert!(message.contains(source), "{source}: {message}");
    }
    assert!(!message.contains("Generic S3 error") && !message.contains("169.254"), "{message}");
}

#[test]
fn version_names_the_binary_and_the_checkout() {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).current_dir(root()).output().expect("git");
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).expect("utf-8").trim().to_owned()
    };
    let commit = std::env::var("GIT_COMMIT").unwrap_or_else(|_| git(&["rev-parse", "--short=12", "HEAD"]));
    let server = Server::start();
    let answer = request(server.addr(), "GET", "/version", "").expect("version");
    let version = crate::json_body(&answer);
    assert_eq!(version["name"], "retail-api", "{version}");
    assert_eq!(version["git_commit"], commit.as_str(), "{version}");
    assert_ne!(version["git_branch"], "unknown", "{version}");
    let date = version["build_date"].as_str().expect("date");
    assert!(date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T', "{date}");
}

/// The README shows the seed's whole `/predict` answer as the server gives it (every field,
/// `request_id` included), and names every apt package the test command may install.
#[test]
fn issue18_readme_shows_the_whole_seed_answer_and_what_the_test_command_installs() {
    let readme = fs::read_to_string(root().join("README.md")).expect("README");
    let start = readme.find("# {\"prediction\":\"UM\"").expect("the seed answer in the README");
    let shown: String = readme[start..]
        .lines()
        .take_while(|l| l.starts_with("# {") || l.starts_with("#  "))
        .map(|l| l.trim_start_matches('#').trim())
        .collect();
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("the README's answer is JSON");
    let server = Server::start();
    let seed = crate::SEED;
    let answer = crate::json_body(&request(server.addr(), "POST", "/predict", seed).expect("predict"));
    let keys = |v: &serde_json::Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&shown), keys(&answer), "the README shows every field");
    for field in ["prediction", "label", "probabilities", "model_version", "warnings"] {
        assert_eq!(shown[field], answer[field], "{field}");
    }
    let id = answer["request_id"].as_str().expect("request_id");
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()), "{id}");

    let script = fs::read_to_string(root().join("scripts/test.sh")).expect("test.sh");
    let packages = script.lines().filter_map(|l| l.split_once("need_apt+=(")).flat_map(|(_, rest)| {
        rest.split(')').next().unwrap_or_default().split_whitespace().map(str::to_owned).collect::<Vec<_>>()
    });
    let section = &readme[readme.find("scripts/test.sh\n```").expect("the test command")..];
    for package in packages {
        assert!(section.contains(&format!("`{package}`")), "the README names the apt package {package}");
    }
}
