//! `retail-api serve` as a real process on loopback: the README's run command.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::{Server, bin, request};

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
    let health = http(&addr, "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let seed = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;
    let predict = http(
        &addr,
        &format!(
            "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{seed}",
            seed.len()
        ),
    );
    assert!(predict.starts_with("HTTP/1.1 200") && predict.contains("\"prediction\""), "{predict}");
    let port = addr.rsplit(':').next().expect("port");
    let check = bin().args(["healthcheck", "--port", port]).status().expect("healthcheck");
    assert!(check.success(), "healthcheck passes while serving");
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}");
    let check = bin().args(["healthcheck", "--port", port]).output().expect("healthcheck");
    assert!(!check.status.success(), "healthcheck fails once the server is gone");
    assert!(String::from_utf8_lossy(&check.stderr).contains("cannot connect"));
}

#[test]
fn sigterm_turns_unready_and_finishes_every_accepted_request() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let mut server = Server::start_with(&["--drain-delay-seconds", "1", "--shutdown-grace-seconds", "15"]);
    let addr = server.addr().to_owned();
    let record = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;
    let batch = Arc::new(format!("{{\"records\": [{}]}}", vec![record; 3000].join(",")));
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..16)
        .map(|_| {
            let (addr, batch, stop, ok, failed) =
                (addr.clone(), batch.clone(), stop.clone(), ok.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut errors = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    match request(&addr, "POST", "/predict/batch", &batch) {
                        Ok(r) if r.starts_with("HTTP/1.1 200") => ok.fetch_add(1, Ordering::SeqCst),
                        Ok(r) => {
                            errors.push(r.lines().next().unwrap_or_default().to_owned());
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(e) => {
                            errors.push(e);
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
                errors
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let before = ok.load(Ordering::SeqCst);
    let signalled = Instant::now();
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    // Readiness turns 503 at once, while the listener still accepts (the drain delay).
    let ready = loop {
        let r = request(&addr, "GET", "/ready", "").expect("the listener accepts during the drain delay");
        if !r.starts_with("HTTP/1.1 200") || signalled.elapsed() > Duration::from_secs(1) {
            break r;
        }
    };
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(signalled.elapsed() < Duration::from_millis(500), "not ready within {:?}", signalled.elapsed());
    // A load balancer now stops sending; requests already sent must all finish.
    stop.store(true, Ordering::SeqCst);
    let errors: Vec<String> = clients.into_iter().flat_map(|c| c.join().expect("client")).collect();
    let exit = server.child.wait().expect("wait");
    let total = ok.load(Ordering::SeqCst);
    assert!(errors.is_empty() && failed.load(Ordering::SeqCst) == 0, "dropped or failed requests: {errors:?}");
    assert!(total > before, "requests in flight at SIGTERM completed ({before} before, {total} in all)");
    assert!(exit.success(), "clean exit: {exit:?}");
    assert!(signalled.elapsed() < Duration::from_secs(10), "exited after {:?}", signalled.elapsed());
    assert!(request(&addr, "GET", "/health", "").is_err(), "nothing listens after exit");
}

#[test]
fn a_missing_model_uri_fails_with_a_clear_message() {
    let out = bin().args(["serve", "--port", "0"]).env("MODEL_URI", "/does/not/exist").output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/does/not/exist"), "{stderr}");
}

#[test]
fn cors_for_any_origin_is_refused_while_authentication_is_on() {
    let out = bin()
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .env("CORS_ALLOWED_ORIGINS", "*")
        .env("JWT_SECRET_KEY", "a-secret-of-at-least-thirty-two-bytes!!")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CORS_ALLOWED_ORIGINS=* is refused while authentication is on"), "{stderr}");
}
