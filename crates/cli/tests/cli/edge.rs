//! The HTTP edge under abuse, as a real process on loopback: idle and slow connections, the
//! connection cap under a low open-file limit, trickled bodies, keep-alive clients through a
//! drain, SIGHUP, memory under steady load without scrapes, and the access log.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::{SEED, Server, json_body, metric, request};

/// Lets this test process open more sockets than the server it tests may.
fn raise_own_file_limit() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
}

/// Whether the server has closed `stream` (EOF or reset), waiting at most `within`.
fn closed_within(mut stream: &TcpStream, within: Duration) -> bool {
    stream.set_read_timeout(Some(within)).expect("timeout");
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// A seed `/predict` request for a kept-alive connection.
fn keep_alive_predict() -> String {
    format!(
        "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{SEED}",
        SEED.len()
    )
}

/// Reads one HTTP/1.1 answer (with Content-Length) from a kept-alive connection: status line,
/// whether it says `Connection: close`, and the body.
fn read_answer(stream: &mut TcpStream) -> std::io::Result<(String, bool, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(ErrorKind::UnexpectedEof, "closed before an answer"));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, head.contains("\r\nconnection: close"), body))
}

#[test]
fn idle_and_slowloris_connections_are_closed_while_health_keeps_answering() {
    raise_own_file_limit();
    let server = Server::start_limited(
        &["--nofile=1024:1024"],
        &["--header-read-timeout-seconds", "1", "--keep-alive-timeout-seconds", "4"],
        &[],
    );
    let addr = server.addr().to_owned();
    // 1,100 sockets that never send, against 1,024 file descriptors.
    let idle: Vec<TcpStream> = (0..1100).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
    assert!(idle.len() >= 1000, "the kernel accepted the idle sockets: {}", idle.len());
    let started = Instant::now();
    let health = request(&addr, "GET", "/health", "").expect("/health answers beside 1,100 idle sockets");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(started.elapsed() < Duration::from_secs(2), "/health took {:?}", started.elapsed());
    // Slowloris: one byte of a head every 200 ms.
    let mut slow: Vec<TcpStream> = (0..200).map(|_| TcpStream::connect(&addr).expect("connect")).collect();
    let head = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let mut closed_slow = 0;
    for &byte in head.iter().take(20) {
        for s in &mut slow {
            let _ = s.write_all(&[byte]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for s in &slow {
        closed_slow += usize::from(closed_within(s, Duration::from_secs(2)));
    }
    assert_eq!(closed_slow, 200, "every slowloris connection is closed by the header-read timeout");
    let closed_idle = idle.iter().filter(|s| closed_within(s, Duration::from_millis(200))).count();
    assert_eq!(closed_idle, idle.len(), "every idle socket is closed (by the header-read timeout or to make room)");
    // A kept-alive connection outlives the header-read timeout, and closes after its idle timeout.
    let mut kept = TcpStream::connect(&addr).expect("connect");
    kept.write_all(keep_alive_predict().as_bytes()).expect("write");
    let (status, _, _) = read_answer(&mut kept).expect("answer");
    assert!(status.starts_with("http/1.1 200"), "{status}");
    assert!(!closed_within(&kept, Duration::from_secs(2)), "idle keep-alive is not cut at the header timeout");
    assert!(closed_within(&kept, Duration::from_secs(5)), "idle keep-alive closes after its idle timeout");
    assert!(metric(&addr, "retail_api_connections_closed_total{reason=\"header_timeout\"}") >= 200.0);
    assert!(metric(&addr, "retail_api_connections_closed_total{reason=\"idle_timeout\"}") >= 1.0);
}

#[test]
fn a_trickled_body_holds_no_scoring_permit() {
    let server = Server::start_with(&["--max-concurrent-requests", "4", "--body-read-timeout-seconds", "2"]);
    let addr = server.addr().to_owned();
    // Eight clients promise 100 bytes and send 5.
    let mut trickling: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            s.write_all(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"SPE")
                .expect("write");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..8 {
        let answer = request(&addr, "POST", "/predict", SEED).expect("predict");
        assert!(answer.starts_with("HTTP/1.1 200"), "slow senders do not starve scoring: {answer}");
    }
    for s in &mut trickling {
        let (status, close, body) = read_answer(s).expect("an answer to the trickled body");
        assert!(status.starts_with("http/1.1 408"), "{status}");
        assert!(close, "the connection closes after a body timeout");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON error");
        assert_eq!(body["code"], "body_timeout");
    }
}

#[test]
fn sighup_drains_like_sigterm() {
    let mut server = Server::start();
    let addr = server.addr().to_owned();
    assert!(request(&addr, "POST", "/predict", SEED).expect("predict").starts_with("HTTP/1.1 200"));
    let status = Command::new("kill").args(["-HUP", &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = server.wait();
    assert!(exit.success(), "SIGHUP drains and exits 0: {exit:?}");
    let lines = server.log_lines();
    assert!(lines.iter().any(|l| l["message"] == "all requests finished; exiting"), "{lines:?}");
}

/// What keep-alive clients saw through a drain.
#[derive(Default)]
struct DrainReport {
    answered: AtomicUsize,
    lost: AtomicUsize,
    told_to_close: AtomicUsize,
}

#[test]
fn keep_alive_clients_lose_nothing_through_a_drain() {
    let mut server = Server::start_with(&["--drain-delay-seconds", "2", "--shutdown-grace-seconds", "10"]);
    let addr = server.addr().to_owned();
    let report = Arc::new(DrainReport::default());
    // The load balancer stops opening connections to this replica once it is deregistered.
    let deregistered = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let (addr, report, deregistered) = (addr.clone(), report.clone(), deregistered.clone());
            std::thread::spawn(move || {
                let request = keep_alive_predict();
                let mut conn: Option<TcpStream> = None;
                let deadline = Instant::now() + Duration::from_secs(15);
                while Instant::now() < deadline {
                    let stream = match conn.as_mut() {
                        Some(stream) => stream,
                        None if deregistered.load(Ordering::SeqCst) => return,
                        None => match TcpStream::connect(&addr) {
                            Ok(stream) => conn.insert(stream),
                            Err(_) => return,
                        },
                    };
                    let sent = stream.write_all(request.as_bytes());
                    match sent.and_then(|()| read_answer(stream)) {
                        Ok((status, close, _)) if status.starts_with("http/1.1 200") => {
                            report.answered.fetch_add(1, Ordering::SeqCst);
                            if close {
                                report.told_to_close.fetch_add(1, Ordering::SeqCst);
                                conn = None;
                            }
                        }
                        _ => {
                            report.lost.fetch_add(1, Ordering::SeqCst);
                            conn = None;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(500));
    deregistered.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("client");
    }
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
    let (answered, lost) = (report.answered.load(Ordering::SeqCst), report.lost.load(Ordering::SeqCst));
    assert!(answered > 1000, "load ran: {answered} answers");
    assert_eq!(lost, 0, "requests lost on kept-alive connections ({answered} answered)");
    assert!(report.told_to_close.load(Ordering::SeqCst) >= 200, "each connection was told to close");
}

/// Steady `/predict` load on kept-alive connections for `seconds`; returns requests answered.
fn steady_load(addr: &str, clients: usize, seconds: u64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let addr = addr.to_owned();
            std::thread::spawn(move || {
                let request = keep_alive_predict();
                let mut stream = TcpStream::connect(&addr).expect("connect");
                let mut answered = 0;
                while Instant::now() < deadline {
                    stream.write_all(request.as_bytes()).expect("write");
                    let (status, _, _) = read_answer(&mut stream).expect("answer");
                    assert!(status.starts_with("http/1.1 200"), "{status}");
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().expect("client")).sum()
}

#[test]
fn memory_stays_flat_under_steady_load_without_scrapes() {
    let server = Server::start_with_env(&[], &[("ACCESS_LOG", "off")]);
    let addr = server.addr().to_owned();
    steady_load(&addr, 4, 3);
    let warm = server.status("VmRSS");
    let answered = steady_load(&addr, 4, 20);
    let grown = server.status("VmRSS").saturating_sub(warm);
    assert!(answered > 100_000, "enough load to show a per-request leak: {answered}");
    assert!(grown < 5 * 1024, "RSS grew {grown} kB over {answered} requests without a scrape");
}

#[test]
fn the_access_log_has_one_line_per_request_with_top_level_fields() {
    let server = Server::start_with_env(&[], &[("TRUSTED_PROXIES", "127.0.0.0/8")]);
    let addr = server.addr().to_owned();
    let mut stream = TcpStream::connect(&addr).expect("connect");
    let body = format!("{{\"records\": [{SEED}, {SEED}]}}");
    let head = format!(
        "POST /predict/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Request-Id: trace-me-1\r\nX-Forwarded-For: 203.0.113.9, 10.0.0.1\r\nUser-Agent: edge-test/1\r\nAuthorization: Bearer secret-token\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes())).expect("write");
    let (status, _, _) = read_answer(&mut stream).expect("answer");
    assert!(status.starts_with("http/1.1 200"), "{status}");
    assert!(request(&addr, "POST", "/predict", "{").expect("bad").starts_with("HTTP/1.1 400"));
    std::thread::sleep(Duration::from_millis(300));
    let lines = server.log_lines();
    let access: Vec<&serde_json::Value> = lines.iter().filter(|l| l["target"] == "access").collect();
    assert_eq!(access.len(), 2, "one line per request: {lines:?}");
    let line = access.iter().find(|l| l["request_id"] == "trace-me-1").expect("the batch's line");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/predict/batch");
    assert_eq!(line["status"], 200);
    assert_eq!(line["rows"], 2);
    assert_eq!(line["bytes_in"], body.len());
    assert!(line["bytes_out"].as_u64().is_some_and(|n| n > 100), "{line}");
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{line}");
    assert_eq!(line["model"], "retail-price-sensitivity");
    assert!(line["model_version"].is_string(), "{line}");
    assert_eq!(line["client"], "203.0.113.9", "the first hop, since loopback is a trusted proxy");
    assert_eq!(line["user_agent"], "edge-test/1");
    let text = serde_json::to_string(&access).expect("json");
    assert!(!text.contains("secret-token") && !text.contains("LONDON"), "no tokens or bodies: {text}");

    let quiet = Server::start_with_env(&[], &[("ACCESS_LOG", "errors")]);
    let addr = quiet.addr().to_owned();
    assert!(request(&addr, "POST", "/predict", SEED).expect("ok").starts_with("HTTP/1.1 200"));
    let bad = request(&addr, "POST", "/predict", "{").expect("bad");
    std::thread::sleep(Duration::from_millis(300));
    let access: Vec<serde_json::Value> = quiet.log_lines().into_iter().filter(|l| l["target"] == "access").collect();
    assert_eq!(access.len(), 1, "errors only: {access:?}");
    assert_eq!(access[0]["status"], 400);
    assert_eq!(access[0]["client"], "127.0.0.1", "no trusted proxies: the peer");
    assert_eq!(json_body(&bad)["request_id"], access[0]["request_id"]);
}
