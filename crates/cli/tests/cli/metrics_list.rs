//! `deploy/monitoring/metrics.txt` lists every `retail_api_*` metric the binary exposes (name,
//! type, label names); the dashboard and the alert rules may query only those (checked by
//! deploy/tests/test_monitoring.py). This test runs the binary, makes it record every metric
//! (requests, a body read timeout, a refused reload, an auth failure, unseen and
//! out-of-range values, drift, capture), and
//! compares `/metrics` with the list both ways, so neither can drift from the code.

use std::collections::{BTreeMap, BTreeSet};

use crate::auth::{SECRET, bearer, call};
use crate::{SEED, Server, bin, request, root};

/// Name → (type, label names) from an exposition.
fn exposed(text: &str) -> BTreeMap<String, (String, BTreeSet<String>)> {
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                out.entry(name.to_owned()).or_default().0 = kind.to_owned();
            }
        } else if !line.starts_with('#') && line.starts_with("retail_api_") {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let mut name = &line[..name_end];
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix)
                    && out.get(base).is_some_and(|(kind, _)| kind == "histogram")
                {
                    name = base;
                }
            }
            let labels = line[name_end..].strip_prefix('{').and_then(|l| l.split_once('}')).map(|(l, _)| l);
            let entry = out.entry(name.to_owned()).or_default();
            for pair in labels.unwrap_or_default().split(',').filter(|p| !p.is_empty()) {
                let label = pair.split('=').next().unwrap_or_default().trim();
                if label != "le" {
                    entry.1.insert(label.to_owned());
                }
            }
        }
    }
    out.retain(|name, _| name.starts_with("retail_api_"));
    out
}

/// Name → (type, label names) from metrics.txt.
fn listed() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let text = std::fs::read_to_string(root().join("deploy/monitoring/metrics.txt")).expect("metrics.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next().unwrap_or_default().to_owned();
            let kind = parts.next().unwrap_or_default().to_owned();
            let labels =
                parts.next().unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
            (name, (kind, labels))
        })
        .collect()
}

/// A request whose body never finishes arriving (the body read timeout answers it).
fn stalled_body(addr: &str, authorization: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: t\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).expect("write");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn metrics_txt_lists_exactly_what_the_binary_exposes() {
    let capture = tempfile::tempdir().expect("tmp");
    // A local copy of the shipped model, polled, so a broken new version is refused (a reload).
    let model = tempfile::tempdir().expect("tmp");
    for entry in std::fs::read_dir(root().join("models/default")).expect("models/default") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, model.path().join(path.file_name().expect("name"))).expect("copy");
    }
    let env = [
        ("MODEL_URI", model.path().to_str().expect("utf-8 path")),
        ("MODEL_POLL_SECONDS", "0.2"),
        ("BODY_READ_TIMEOUT_SECONDS", "0.3"),
        ("JWT_SECRET_KEY", SECRET),
        ("METRICS_PUBLIC", "true"),
        ("CAPTURE_SAMPLE_PERCENT", "100"),
        ("CAPTURE_URI", capture.path().to_str().expect("utf-8 path")),
        ("CAPTURE_FLUSH_SECONDS", "1"),
        ("DRIFT_MIN_ROWS", "1"),
    ];
    let server = Server::start_with_env(&[], &env);
    let out = bin()
        .args(["token", "--sub", "metrics", "--scopes", "predict model:read", "--ttl", "5m"])
        .env("JWT_SECRET_KEY", SECRET)
        .output()
        .expect("token");
    let token = bearer(String::from_utf8(out.stdout).expect("utf8").trim());
    let auth = [("Authorization", token.as_str())];
    let addr = server.addr();
    assert_eq!(call(addr, "POST", "/predict", &auth, SEED).0, 200);
    let odd = SEED.replace("\"LONDON\"", "\"ATLANTIS\"").replace("125.50", "9000000");
    assert_eq!(call(addr, "POST", "/predict", &auth, &odd).0, 200, "unseen region, SPEND out of range");
    assert_eq!(call(addr, "POST", "/predict", &[("Authorization", "Bearer nope")], SEED).0, 401);
    let stalled = stalled_body(addr, &token);
    assert!(stalled.starts_with("HTTP/1.1 408"), "the body read timeout: {stalled}");
    let manifest = model.path().join("manifest.json");
    let mut text = std::fs::read_to_string(&manifest).expect("manifest");
    text = text.replacen("\"version\": \"", "\"version\": \"broken-", 1);
    std::fs::write(model.path().join("model.json"), b"{}").expect("break the model");
    std::fs::write(&manifest, text).expect("a new version");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let text = request(addr, "GET", "/metrics", "").expect("metrics");
    let (exposed, listed) = (exposed(&text), listed());
    let names = |m: &BTreeMap<String, (String, BTreeSet<String>)>| m.keys().cloned().collect::<BTreeSet<_>>();
    let unlisted: Vec<_> = names(&exposed).difference(&names(&listed)).cloned().collect();
    let missing: Vec<_> = names(&listed).difference(&names(&exposed)).cloned().collect();
    assert!(unlisted.is_empty(), "exposed but not in deploy/monitoring/metrics.txt: {unlisted:?}");
    assert!(missing.is_empty(), "listed but not exposed after the traffic above: {missing:?}\n{text}");
    for (name, (kind, labels)) in &listed {
        assert_eq!(&exposed[name], &(kind.clone(), labels.clone()), "{name}: type and label names");
    }
}
