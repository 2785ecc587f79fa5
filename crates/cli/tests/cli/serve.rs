//! `retail-api serve` as a real process on loopback: the README's run command.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::{Server, bin};

fn http(addr: &str, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

#[test]
fn serves_the_embedded_model_and_stops_on_sigterm() {
    let mut server = Server::start();
    assert_eq!(server.serving["source"], "embedded");
    let addr = server.addr().to_owned();
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
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = server.child.wait().expect("wait");
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
