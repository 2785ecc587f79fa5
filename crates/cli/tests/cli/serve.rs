//! `retail-api serve` as a real process on loopback: the README's run command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use crate::bin;

fn http(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn serves_the_embedded_model_and_stops_on_sigterm() {
    let mut child = bin()
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .env("LOG_FORMAT", "json")
        .env_remove("MODEL_URI")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server logs before exiting")
            .expect("line");
        let log: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        if log["message"] == "serving" {
            assert_eq!(log["source"], "embedded");
            break log["addr"].as_str().expect("addr").to_owned();
        }
    };
    let health = http(
        &addr,
        "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let seed = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;
    let predict = http(
        &addr,
        &format!(
            "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{seed}",
            seed.len()
        ),
    );
    assert!(
        predict.starts_with("HTTP/1.1 200") && predict.contains("\"prediction\""),
        "{predict}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}");
}

#[test]
fn a_missing_model_uri_fails_with_a_clear_message() {
    let out = bin()
        .args(["serve", "--port", "0"])
        .env("MODEL_URI", "/does/not/exist")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/does/not/exist"), "{stderr}");
}
