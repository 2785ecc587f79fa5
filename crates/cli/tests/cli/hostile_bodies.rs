//! Hostile request bodies against a real release server on loopback: each is answered 4xx or
//! 200, never 5xx, and the server's peak memory (`VmHWM`) grows by at most 8× the body plus a
//! fixed margin. Timed-out batches stop their work: threads and memory stay bounded under a storm
//! of them, and the server answers at once afterwards.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{SEED, Server, json_body, request};

/// Fixed part of the memory bound: what a request may use besides 8× its body.
const MARGIN_KIB: u64 = 64 * 1024;

/// The batch body limit (`ServerConfig::default().max_batch_body_bytes`).
const BATCH_LIMIT: usize = 16 * 1024 * 1024;

/// One request with any content type; the status and body of the answer.
fn send(addr: &str, path: &str, content_type: &str, body: &[u8]) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| format!("read: {e}"))?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status: {answer:.200}"))?;
    Ok((status, answer))
}

/// `{"records":[0,0,…]}` filling the batch limit.
fn zeros() -> Vec<u8> {
    let n = (BATCH_LIMIT - 16) / 2;
    let mut body = b"{\"records\":[0".to_vec();
    body.extend(std::iter::repeat_n(b",0".as_slice(), n - 1).flatten());
    body.extend_from_slice(b"]}");
    body
}

/// 10,000 valid records whose six categories are long strings of characters that need escaping.
fn odd_categories() -> Vec<u8> {
    let odd: String = "\u{85}\u{9f}\u{85}\"".repeat(29);
    let mut record: serde_json::Value = serde_json::from_str(SEED).expect("seed");
    for field in ["BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT", "PROD_CODE_20", "PROD_CODE_30"] {
        record[field] = serde_json::Value::from(format!("{field}{odd}"));
    }
    let record = record.to_string();
    let body = format!("{{\"records\":[{}]}}", vec![record; 10_000].join(","));
    assert!(body.len() > 14_000_000 && body.len() <= BATCH_LIMIT, "{} bytes", body.len());
    body.into_bytes()
}

/// `n` copies of `item` joined by commas, inside `open` … `close`.
fn repeated(open: &str, item: impl Fn(usize) -> String, n: usize, close: &str) -> Vec<u8> {
    let items: Vec<String> = (0..n).map(item).collect();
    format!("{open}{}{close}", items.join(",")).into_bytes()
}

/// A v2 request whose `SPEND` tensor holds the rest of the batch limit in zeros.
fn v2_zeros() -> Vec<u8> {
    let column = |name: &str, datatype: &str, value: &str| {
        format!(r#"{{"name":"{name}","shape":[1],"datatype":"{datatype}","data":[{value}]}}"#)
    };
    let mut inputs: Vec<String> = ["BASKET_SIZE", "BASKET_TYPE", "STORE_REGION", "STORE_FORMAT", "PROD_CODE_20"]
        .iter()
        .map(|n| column(n, "BYTES", "\"M\""))
        .collect();
    inputs.push(column("QUANTITY", "FP64", "3"));
    inputs.push(column("PROD_CODE_30", "BYTES", "\"FRESH\""));
    let head = format!(r#"{{"inputs":[{},{{"name":"SPEND","shape":[1],"datatype":"FP64","data":[0"#, inputs.join(","));
    let n = (BATCH_LIMIT - head.len() - 8) / 2;
    let mut body = head.into_bytes();
    body.extend(std::iter::repeat_n(b",0".as_slice(), n).flatten());
    body.extend_from_slice(b"]}]}");
    body
}

/// One hostile body: where it goes and what it is.
struct Case {
    name: &'static str,
    path: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let invalid_csv = "M,MIXED,LONDON,LS,abc,-1,FOOD,FRESH\n";
    vec![
        Case {
            name: "16 MB of zeros as records",
            path: "/predict/batch",
            content_type: "application/json",
            body: zeros(),
        },
        Case {
            name: "16 MB of long odd category strings",
            path: "/predict/batch",
            content_type: "application/json",
            body: odd_categories(),
        },
        Case {
            name: "10,000 empty records",
            path: "/predict/batch",
            content_type: "application/json",
            body: repeated("{\"records\":[", |_| "{}".to_owned(), 10_000, "]}"),
        },
        Case {
            name: "20,000 invalid basket_items",
            path: "/predict",
            content_type: "application/json",
            body: repeated(
                "{\"basket_items\":{",
                |i| format!("\"P{i}\":{{\"quantity\":0,\"price\":\"x\"}}"),
                20_000,
                "}}",
            ),
        },
        Case {
            name: "10,000 invalid CSV rows",
            path: "/invocations",
            content_type: "text/csv",
            body: invalid_csv.repeat(10_000).into_bytes(),
        },
        Case {
            name: "16 MB of CSV rows",
            path: "/invocations",
            content_type: "text/csv",
            body: "S,FRESH,WALES,SS,4.2,3,FOOD,DAIRY\n".repeat(BATCH_LIMIT / 34).into_bytes(),
        },
        Case {
            name: "16 MB v2 tensor of zeros",
            path: "/v2/models/retail-price-sensitivity/infer",
            content_type: "application/json",
            body: v2_zeros(),
        },
    ]
}

/// What one case did to a fresh server.
struct Outcome {
    name: &'static str,
    status: Result<u16, String>,
    body_kib: u64,
    growth_kib: u64,
    answer_kib: u64,
    longest_warning: usize,
}

impl Outcome {
    fn bound_kib(&self) -> u64 {
        8 * self.body_kib + MARGIN_KIB
    }
}

fn run(case: Case) -> Outcome {
    let server = Server::start();
    let addr = server.addr().to_owned();
    // Warm up: the first answers allocate the server's lasting state.
    for path in ["/predict", "/predict/batch"] {
        let body = if path == "/predict" { SEED.to_owned() } else { format!("{{\"records\":[{SEED}]}}") };
        request(&addr, "POST", path, &body).expect("warm-up");
    }
    let before = server.status("VmHWM");
    let answer = send(&addr, case.path, case.content_type, &case.body);
    let growth_kib = server.status("VmHWM").saturating_sub(before);
    let longest_warning = answer
        .as_ref()
        .map(|(_, text)| {
            let body = json_body(text);
            let predictions = body["predictions"].as_array().cloned().unwrap_or_default();
            let warnings = predictions.iter().flat_map(|p| p["warnings"].as_array().cloned().unwrap_or_default());
            warnings.map(|w| w.as_str().map_or(0, |w| w.chars().count())).max().unwrap_or(0)
        })
        .unwrap_or(0);
    Outcome {
        name: case.name,
        status: answer.as_ref().map(|(status, _)| *status).map_err(Clone::clone),
        body_kib: case.body.len() as u64 / 1024,
        growth_kib,
        answer_kib: answer.as_ref().map_or(0, |(_, text)| text.len() as u64 / 1024),
        longest_warning,
    }
}

#[test]
fn hostile_bodies_get_client_errors_within_eight_times_their_size() {
    let outcomes: Vec<Outcome> = cases().into_iter().map(run).collect();
    let report: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "{}: status {:?}, body {} KiB, VmHWM +{} KiB (bound {} KiB), answer {} KiB, longest warning {} chars",
                o.name,
                o.status,
                o.body_kib,
                o.growth_kib,
                o.bound_kib(),
                o.answer_kib,
                o.longest_warning
            )
        })
        .collect();
    let report = report.join("\n");
    eprintln!("{report}");
    for o in &outcomes {
        let status = o.status.clone().unwrap_or_else(|e| panic!("{}: {e}\n{report}", o.name));
        assert!(status < 500, "{}: answered {status}, never a server error\n{report}", o.name);
        assert!(status == 200 || (400..500).contains(&status), "{}: answered {status}\n{report}", o.name);
        assert!(o.growth_kib <= o.bound_kib(), "{}: peak memory over 8× the body + 64 MiB\n{report}", o.name);
        assert!(o.longest_warning <= 200, "{}: a warning echoes a short prefix only\n{report}", o.name);
    }
}

/// Sends `body` to `/predict/batch` in a loop until `stop`; counts the answers by status line
/// (errors are expected: a 429 answered before the body is read closes the connection).
fn storm(addr: &str, body: &Arc<String>, stop: &Arc<AtomicBool>, done: &Arc<Mutex<BTreeMap<String, usize>>>) {
    while !stop.load(Ordering::SeqCst) {
        let outcome = match request(addr, "POST", "/predict/batch", body) {
            Ok(answer) => answer.lines().next().unwrap_or_default().to_owned(),
            Err(e) => e.split(':').next().unwrap_or_default().to_owned(),
        };
        if outcome.contains("429") {
            // A polite client backs off before retrying.
            std::thread::sleep(Duration::from_millis(20));
        }
        *done.lock().expect("lock").entry(outcome).or_default() += 1;
    }
}

/// One request with a read timeout: `Ok` with the answer's status line when it came in time.
fn prompt(addr: &str, method: &str, path: &str, body: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| format!("read: {e}"))?;
    Ok(answer.lines().next().unwrap_or_default().to_owned())
}

#[test]
fn timed_out_batches_stop_their_work_and_free_their_threads() {
    let server = Server::start_with(&["--max-concurrent-requests", "4", "--request-timeout-ms", "20"]);
    let addr = server.addr().to_owned();
    // Baskets in the basket_items shape: much work for few bytes, so the body is read in time.
    let basket = r#"{"basket_items":[{"quantity":2,"price":10.99}]}"#;
    let body = Arc::new(format!("{{\"records\":[{}]}}", vec![basket; 10_000].join(",")));
    let (stop, done) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(BTreeMap::new())));
    let clients: Vec<_> = (0..128)
        .map(|_| {
            let (addr, body, stop, done) = (addr.clone(), body.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || storm(&addr, &body, &stop, &done))
        })
        .collect();
    let start = Instant::now();
    let mut most_threads = 0;
    while start.elapsed() < Duration::from_secs(4) {
        most_threads = most_threads.max(server.status("Threads"));
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    clients.into_iter().for_each(|c| c.join().expect("client"));
    let peak_mib = server.status("VmHWM") / 1024;
    let health = prompt(&addr, "GET", "/health", "");
    let predict = prompt(&addr, "POST", "/predict", SEED);
    let threads_after = server.status("Threads");
    let report = format!(
        "answers {:?}; most threads {most_threads}, {threads_after} after; VmHWM {peak_mib} MiB; /health {health:?}; /predict {predict:?}",
        done.lock().expect("lock")
    );
    eprintln!("{report}");
    // Main, runtime workers, rayon, scoring slots (2 per core) and a few more; far below the
    // blocking pool's 512.
    let cores = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    assert!(most_threads < 16 + 4 * cores, "the blocking work is bounded: {report}");
    assert!(peak_mib < 256, "memory stays bounded: {report}");
    assert!(health.is_ok_and(|s| s.starts_with("HTTP/1.1 200")), "/health answers at once: {report}");
    assert!(predict.is_ok_and(|s| s.starts_with("HTTP/1.1 200")), "/predict answers at once: {report}");
}
