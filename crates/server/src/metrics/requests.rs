//! The request metrics layer: `retail_api_requests_total{route,method,status}`,
//! `retail_api_request_duration_seconds{route,method}` and the in-flight gauge. Labels come only
//! from closed sets — the matched route template (else `unmatched`), a known method (else
//! `OTHER`), the numeric status — so no request can add a series. Handles are registered once
//! per label set and cached, so the hot path only increments.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::response::Response;
use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};

use crate::edge::hook::Hook;

/// Methods that get their own label; any other is `OTHER`.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::PATCH,
    Method::TRACE,
    Method::CONNECT,
];

/// The method's label.
pub fn method_label(method: &Method) -> &'static str {
    METHODS.iter().find(|m| *m == method).map_or("OTHER", Method::as_str)
}

/// Registered handles by (route, method, status).
type Key = (&'static str, &'static str, u16);

#[derive(Default)]
struct Handles {
    /// Route templates seen (a closed set: the router's own), leaked once each so keys borrow them.
    routes: HashMap<String, &'static str>,
    counters: HashMap<Key, Counter>,
    histograms: HashMap<(&'static str, &'static str), Histogram>,
}

fn handles() -> &'static RwLock<Handles> {
    static HANDLES: OnceLock<RwLock<Handles>> = OnceLock::new();
    HANDLES.get_or_init(RwLock::default)
}

/// Records one finished request.
fn record(route: &str, method: &'static str, status: u16, seconds: f64) {
    if let Ok(h) = handles().read()
        && let Some(route) = h.routes.get(route).copied()
        && let (Some(c), Some(d)) = (h.counters.get(&(route, method, status)), h.histograms.get(&(route, method)))
    {
        c.increment(1);
        d.record(seconds);
        return;
    }
    let Ok(mut h) = handles().write() else { return };
    let route = match h.routes.get(route) {
        Some(route) => *route,
        None => {
            let leaked: &'static str = Box::leak(route.to_owned().into_boxed_str());
            h.routes.insert(route.to_owned(), leaked);
            leaked
        }
    };
    let status_label = status.to_string();
    h.counters
        .entry((route, method, status))
        .or_insert_with(
            || counter!("retail_api_requests_total", "route" => route, "method" => method, "status" => status_label),
        )
        .increment(1);
    h.histograms
        .entry((route, method))
        .or_insert_with(|| histogram!("retail_api_request_duration_seconds", "route" => route, "method" => method))
        .record(seconds);
}

/// Counts a request in flight until dropped (also when the request is abandoned).
pub struct InFlight(&'static Gauge);

impl InFlight {
    fn enter(gauge: &'static Gauge) -> Self {
        gauge.increment(1.0);
        Self(gauge)
    }
}

fn in_flight_gauge() -> &'static Gauge {
    static GAUGE: OnceLock<Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| gauge!("retail_api_requests_in_flight"))
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The layer's hook.
#[derive(Debug, Clone, Copy)]
pub struct Track;

impl Hook for Track {
    type Seen = (InFlight, Option<MatchedPath>, &'static str, Instant);

    fn before(&self, request: &mut Request) -> Self::Seen {
        let route = request.extensions().get::<MatchedPath>().cloned();
        (InFlight::enter(in_flight_gauge()), route, method_label(request.method()), Instant::now())
    }

    fn after(&self, (_in_flight, route, method, start): Self::Seen, response: &mut Response) {
        let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
        record(route, method, response.status().as_u16(), start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[tokio::test]
    async fn an_abandoned_request_leaves_the_in_flight_gauge() {
        let value = Arc::new(AtomicU64::new(0));
        let gauge: &'static Gauge = Box::leak(Box::new(Gauge::from_arc(value.clone())));
        let request = async {
            let _in_flight = InFlight::enter(gauge);
            std::future::pending::<()>().await;
        };
        assert!(tokio::time::timeout(std::time::Duration::from_millis(5), request).await.is_err());
        assert_eq!(f64::from_bits(value.load(Ordering::SeqCst)), 0.0, "dropped without finishing");
        let _busy = InFlight::enter(gauge);
        assert_eq!(f64::from_bits(value.load(Ordering::SeqCst)), 1.0);
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").expect("method")), "OTHER");
    }
}
