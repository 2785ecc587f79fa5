//! The edge through the router: closed metric label sets, capped error lists with the request
//! id, security headers on pages, process metrics, latency buckets up to the timeout, and
//! `Connection: close` while draining.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use retail_server::ServerConfig;
use serde_json::json;

use crate::{Xorshift, call, call_full, seed, state, state_with};

#[tokio::test]
async fn random_methods_and_paths_add_no_metric_series() {
    let s = state();
    let mut rng = Xorshift(0x5eed);
    let letters = |rng: &mut Xorshift, n: usize| -> String {
        (0..n).map(|_| char::from(b'A' + u8::try_from(rng.next() % 26).expect("letter"))).collect()
    };
    for _ in 0..1000 {
        let method = letters(&mut rng, 40);
        let path = format!("/{}/{}", letters(&mut rng, 30).to_lowercase(), rng.next());
        let request = Request::builder().method(method.as_str()).uri(path).body(Body::empty()).expect("request");
        let (status, _, _) = call_full(&s, request).await;
        assert!(status.is_client_error(), "{status}");
    }
    let (_, _, body) = call_full(&s, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    let text = String::from_utf8_lossy(&body);
    assert!(body.len() < 100 * 1024, "/metrics is {} bytes after 1,000 random requests", body.len());
    assert!(text.contains(r#"method="OTHER""#) && text.contains(r#"route="unmatched""#), "{text}");
}

#[tokio::test]
async fn a_huge_invalid_batch_lists_100_errors_with_the_total_and_the_request_id() {
    let s = state();
    let body = json!({"records": vec![json!({}); 10_000]}).to_string();
    let request = Request::post("/predict/batch")
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "big-422")
        .body(Body::from(body))
        .expect("request");
    let (status, headers, bytes) = call_full(&s, request).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}", String::from_utf8_lossy(&bytes[..200.min(bytes.len())]));
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(answer["details"].as_array().map(Vec::len), Some(100));
    assert_eq!(answer["total_errors"], 80_000, "8 fields of 10,000 records");
    assert_eq!(answer["details"][0]["field"], "records[0].SPEND");
    assert_eq!(answer["request_id"], "big-422");
    assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let s = state();
    for path in ["/", "/docs/"] {
        let (status, headers, _) = call_full(&s, Request::get(path).body(Body::empty()).expect("request")).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().is_ok_and(|v| v.contains("frame-ancestors 'none'")));
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn metrics_include_the_process_and_latency_buckets_up_to_the_timeout() {
    let s = state_with(ServerConfig { request_timeout: std::time::Duration::from_secs(10), ..ServerConfig::default() });
    call(&s, "POST", "/predict", Some("application/json"), seed().to_string()).await;
    let (_, _, body) = call_full(&s, Request::get("/metrics").body(Body::empty()).expect("request")).await;
    let text = String::from_utf8_lossy(&body);
    for name in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing:\n{text}");
    }
    assert!(
        text.contains(r#"retail_api_request_duration_seconds_bucket{route="/predict",method="POST",le="10"}"#),
        "{text}"
    );
}

#[tokio::test]
async fn answers_say_connection_close_while_draining() {
    let s = state();
    let (_, headers, _) = call_full(&s, Request::get("/health").body(Body::empty()).expect("request")).await;
    assert!(headers.get(header::CONNECTION).is_none());
    s.start_draining();
    let (status, headers, _) = call_full(&s, Request::get("/health").body(Body::empty()).expect("request")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONNECTION], "close");
}
