//! Payload capture (`CAPTURE_SAMPLE_PERCENT`, `CAPTURE_URI`) of the real binary: the sampled
//! share of requests lands as JSON Lines in the hourly layout without credentials, every scoring
//! route is captured, S3 objects appear under the prefix on moto, a full queue drops and counts
//! without failing requests, write failures are counted, and invalid settings are refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::s3::{Moto, free_port};
use crate::{SEED, Server, bin, metric, run_fail};

const SECRET: &str = "test-only-secret-0123456789abcdef0123";

/// Request headers (or environment variables): names and values.
type Pairs<'a> = &'a [(&'a str, &'a str)];

/// One request on its own connection with extra headers; the status and body.
fn call(addr: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned())
}

/// SIGTERM, then waits for a clean exit (the capture writer flushes on the way out).
fn stop(server: &mut Server) {
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    assert!(server.wait().success(), "graceful exit");
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").map(|e| e.expect("entry").path()) {
        if entry.is_dir() { found.extend(files(&entry)) } else { found.push(entry) }
    }
    found
}

/// The records of JSON Lines `content`, each checked for the capture fields.
fn records(content: &str) -> Vec<Value> {
    content
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).expect("a JSON record per line");
            for field in ["time", "model", "model_version", "request_id", "route", "status", "input", "output"] {
                assert!(record.get(field).is_some(), "{field} in {record}");
            }
            assert!(record["time"].as_str().is_some_and(|t| t.ends_with('Z')), "RFC 3339 UTC: {record}");
            record
        })
        .collect()
}

/// Asserts `file` is `<dir>/<model>/<YYYY>/<MM>/<DD>/<HH>/capture-….jsonl`.
fn assert_hourly(dir: &Path, file: &Path) {
    let relative = file.strip_prefix(dir).expect("under the directory");
    let parts: Vec<&str> = relative.iter().filter_map(|p| p.to_str()).collect();
    assert_eq!(parts.len(), 6, "{relative:?}");
    let digits = |s: &str, n: usize| s.len() == n && s.chars().all(|c| c.is_ascii_digit());
    assert!(digits(parts[1], 4) && digits(parts[2], 2) && digits(parts[3], 2) && digits(parts[4], 2), "{relative:?}");
    assert!(parts[5].starts_with("capture-") && parts[5].ends_with(".jsonl"), "{relative:?}");
}

#[test]
fn a_quarter_of_requests_is_captured_hourly_without_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    let uri = dir.path().display().to_string();
    let env = [
        ("JWT_SECRET_KEY", SECRET),
        ("CAPTURE_SAMPLE_PERCENT", "25"),
        ("CAPTURE_URI", uri.as_str()),
        ("CAPTURE_FLUSH_SECONDS", "0.5"),
        ("CAPTURE_FLUSH_RECORDS", "100"),
    ];
    let mut server = Server::start_with_env(&[], &env);
    let out = bin().args(["token", "--sub", "capture", "--scopes", "predict"]).env("JWT_SECRET_KEY", SECRET).output();
    let token = String::from_utf8(out.expect("token").stdout).expect("utf8").trim().to_owned();
    assert!(token.len() > 20, "a token");
    let bearer = format!("Bearer {token}");
    let headers = [("Authorization", bearer.as_str()), ("X-API-Key", "not-a-key-but-never-logged")];
    let requests = 2_000;
    for _ in 0..requests {
        assert_eq!(call(server.addr(), "/predict", &headers, SEED).0, 200);
    }
    stop(&mut server);
    let mut captured = Vec::new();
    for file in files(dir.path()) {
        assert_hourly(dir.path(), &file);
        let content = std::fs::read_to_string(&file).expect("read");
        assert!(!content.contains(&token) && !content.contains("never-logged"), "no credential in {file:?}");
        captured.extend(records(&content));
    }
    // Binomial(2000, 0.25): mean 500, σ ≈ 19.4; ±3σ (not 2σ) so the test fails about 1 run in 370.
    assert!((442..=558).contains(&captured.len()), "{} records captured of {requests}", captured.len());
    for record in &captured {
        assert_eq!((record["route"].as_str(), record["status"].as_u64()), (Some("/predict"), Some(200)), "{record}");
        assert_eq!(record["model"], "retail-price-sensitivity");
        assert_eq!(record["input"]["STORE_REGION"], "LONDON", "the request body as JSON");
        assert!(record["output"]["prediction"].is_string(), "the answer as JSON: {record}");
        assert_eq!(record["output"]["request_id"], record["request_id"]);
    }
    let mut ids: Vec<&str> = captured.iter().filter_map(|r| r["request_id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), captured.len(), "one record per request");
}

#[test]
fn every_scoring_route_is_captured_and_nothing_else() {
    let dir = tempfile::tempdir().expect("dir");
    let uri = format!("file://{}", dir.path().display());
    let mut server = Server::start_with_env(&[], &[("CAPTURE_SAMPLE_PERCENT", "100"), ("CAPTURE_URI", &uri)]);
    let batch = format!("{{\"records\":[{SEED},{SEED}]}}");
    let v2 = r#"{"inputs":[{"name":"SPEND","shape":[1],"datatype":"FP64","data":[12.5]}]}"#;
    let csv = [("Content-Type", "text/csv")];
    let calls: [(&str, Pairs, &str); 8] = [
        ("/predict", &[], SEED),
        ("/predict/batch", &[], &batch),
        ("/batch-predict", &[], &batch),
        ("/models/retail-price-sensitivity/predict", &[], SEED),
        ("/models/retail-price-sensitivity/predict/batch", &[], &batch),
        ("/invocations", &[], &batch),
        ("/invocations", &csv, "M,MIXED,LONDON,LS,125.5,3,FOOD,FRESH\n"),
        ("/v2/models/retail-price-sensitivity/infer", &[], v2),
    ];
    let mut answers = Vec::new();
    for (path, headers, body) in calls {
        answers.push(call(server.addr(), path, headers, body));
    }
    assert_eq!(call(server.addr(), "/predict", &[], "{not json").0, 400);
    assert_eq!(
        crate::request(server.addr(), "GET", "/model/info", "").map(|a| a.starts_with("HTTP/1.1 200")),
        Ok(true)
    );
    stop(&mut server);
    let content: String = files(dir.path()).iter().map(|f| std::fs::read_to_string(f).expect("read")).collect();
    let mut captured = records(&content);
    captured.sort_by_key(|r| r["time"].as_str().map(str::to_owned));
    assert_eq!(captured.len(), calls.len() + 1, "{content}");
    let routes: Vec<&str> = captured.iter().filter_map(|r| r["route"].as_str()).collect();
    let mut expected: Vec<&str> = calls.iter().map(|(path, _, _)| *path).collect();
    expected[7] = "/v2/models/{name}/infer";
    expected[3] = "/models/{name}/predict";
    expected[4] = "/models/{name}/predict/batch";
    expected.push("/predict");
    let (mut got, mut want) = (routes.clone(), expected.clone());
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    let csv_record = captured.iter().find(|r| r["input"].as_str().is_some_and(|s| s.starts_with("M,MIXED")));
    assert!(csv_record.is_some_and(|r| r["status"] == 200), "CSV input kept as text: {content}");
    let malformed = captured.iter().find(|r| r["input"] == "{not json").expect("the malformed body, as text");
    assert_eq!(malformed["status"], 400);
    assert_eq!(malformed["output"]["code"].as_str(), Some("malformed_json"), "{malformed}");
    for ((path, _, _), (status, body)) in
        calls.iter().zip(&answers).filter(|((path, _, _), _)| !path.starts_with("/v2"))
    {
        assert_eq!(*status, 200, "{path}: {body}");
    }
}

#[test]
fn captures_reach_the_s3_prefix_by_shutdown() {
    let moto = Moto::start();
    moto.create_bucket("captures");
    let mut env: Vec<(&str, String)> = moto.env();
    env.extend([
        ("CAPTURE_SAMPLE_PERCENT", "100".to_owned()),
        ("CAPTURE_URI", "s3://captures/prod/traffic".to_owned()),
        ("CAPTURE_FLUSH_SECONDS", "3600".to_owned()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start_with_env(&[], &env);
    for _ in 0..20 {
        assert_eq!(call(server.addr(), "/predict", &[], SEED).0, 200);
    }
    stop(&mut server);
    let keys = moto.list("captures", "prod/traffic/");
    assert!(!keys.is_empty(), "objects under the prefix");
    let mut captured = 0;
    for key in &keys {
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 8, "prod/traffic/<model>/YYYY/MM/DD/HH/capture-…: {key}");
        assert_eq!(parts[2], "retail-price-sensitivity");
        captured += records(&String::from_utf8(moto.get("captures", key)).expect("utf8")).len();
    }
    assert_eq!(captured, 20);
}

#[test]
fn a_full_queue_drops_and_counts_without_failing_requests() {
    // Writes go to an S3 endpoint nobody listens on: the writer is stuck retrying.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let env = [
        ("AWS_ENDPOINT_URL", dead.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("CAPTURE_SAMPLE_PERCENT", "100"),
        ("CAPTURE_URI", "s3://nowhere/captures"),
        ("CAPTURE_QUEUE", "1"),
        ("CAPTURE_FLUSH_RECORDS", "1"),
    ];
    let server = Server::start_with_env(&[], &env);
    for _ in 0..200 {
        assert_eq!(call(server.addr(), "/predict", &[], SEED).0, 200);
    }
    let dropped = metric(server.addr(), "retail_api_capture_dropped_total{reason=\"queue_full\"}");
    assert!(dropped >= 190.0, "{dropped} dropped as queue_full");
}

#[test]
fn write_failures_are_counted_and_logged() {
    let dir = tempfile::tempdir().expect("dir");
    let target = dir.path().join("captures");
    let uri = target.display().to_string();
    let env = [("CAPTURE_SAMPLE_PERCENT", "100"), ("CAPTURE_URI", uri.as_str()), ("CAPTURE_FLUSH_SECONDS", "0.1")];
    let server = Server::start_with_env(&[], &env);
    // The directory becomes a file: nothing can be written under it.
    std::fs::remove_dir_all(&target).expect("remove");
    std::fs::write(&target, "in the way").expect("file");
    for _ in 0..5 {
        assert_eq!(call(server.addr(), "/predict", &[], SEED).0, 200);
    }
    let start = std::time::Instant::now();
    while metric(server.addr(), "retail_api_capture_dropped_total{reason=\"write_failed\"}") < 5.0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "write failures counted");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(metric(server.addr(), "retail_api_capture_records_total"), 0.0);
    let warned = server.log_lines().iter().any(|l| l["message"] == "payload capture: write failed");
    assert!(warned, "the failure is logged");
}

#[test]
fn invalid_capture_settings_are_refused_at_startup() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("file");
    let file = file.display().to_string();
    let cases: [(Pairs, &str); 5] = [
        (&[("CAPTURE_SAMPLE_PERCENT", "5")], "needs CAPTURE_URI"),
        (&[("CAPTURE_SAMPLE_PERCENT", "101"), ("CAPTURE_URI", "s3://b/p")], "from 0 to 100"),
        (&[("CAPTURE_SAMPLE_PERCENT", "5"), ("CAPTURE_URI", "gs://b/p")], "expected s3://"),
        (&[("CAPTURE_SAMPLE_PERCENT", "5"), ("CAPTURE_URI", &file)], "not a usable directory"),
        (&[("CAPTURE_SAMPLE_PERCENT", "5"), ("CAPTURE_URI", "s3://b"), ("CAPTURE_QUEUE", "0")], "must be positive"),
    ];
    for (env, message) in cases {
        let out = run_fail(bin().args(["serve", "--host", "127.0.0.1", "--port", "0"]).envs(env.iter().copied()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{env:?}: {stderr}");
    }
}
