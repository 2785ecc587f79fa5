//! Prometheus metrics (`retail_api_…`), labelled by route template, method, status, class,
//! field and model version — never by raw paths or user values.

use std::sync::OnceLock;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use retail_model::artifact::Artifact;

use crate::ModelSource;

/// Latency buckets in seconds (without them the exporter renders summaries, not histograms).
const LATENCY_BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. `None` when another recorder
/// was installed first (metrics then go there).
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(&LATENCY_BUCKETS).ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!("retail_api_requests_total", "HTTP requests by route template, method and status");
    metrics::describe_histogram!(
        "retail_api_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    metrics::describe_gauge!("retail_api_requests_in_flight", "HTTP requests being handled");
    metrics::describe_counter!("retail_api_predictions_total", "Baskets scored, by predicted class and model version");
    metrics::describe_counter!("retail_api_unseen_categories_total", "Category values scored as unseen, by field");
    metrics::describe_gauge!("retail_api_model_info", "The served model (value 1), by name, version and source");
    metrics::describe_gauge!(
        "retail_api_build_info",
        "The running binary (value 1), by version, commit, branch and build date"
    );
}

/// The exposition text for `GET /metrics`.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Records the served model and the build.
pub fn record_model(artifact: &Artifact, source: &ModelSource) {
    handle();
    let m = &artifact.manifest;
    gauge!("retail_api_model_info", "name" => m.name.clone(), "version" => m.version.clone(), "source" => source.kind()).set(1.0);
    let b = crate::routes::meta::build();
    gauge!("retail_api_build_info", "version" => b.version, "git_commit" => b.git_commit, "git_branch" => b.git_branch, "build_date" => b.build_date).set(1.0);
}

/// Records one finished request.
pub fn record_request(route: &str, method: &str, status: u16, seconds: f64) {
    counter!("retail_api_requests_total", "route" => route.to_owned(), "method" => method.to_owned(), "status" => status.to_string()).increment(1);
    histogram!("retail_api_request_duration_seconds", "route" => route.to_owned(), "method" => method.to_owned())
        .record(seconds);
}

/// Adjusts the in-flight gauge.
pub fn in_flight(delta: f64) {
    gauge!("retail_api_requests_in_flight").increment(delta);
}

/// Records one scored basket.
pub fn record_prediction(class: &str, version: &str, unseen_fields: impl Iterator<Item = &'static str>) {
    counter!("retail_api_predictions_total", "class" => class.to_owned(), "model_version" => version.to_owned())
        .increment(1);
    for field in unseen_fields {
        counter!("retail_api_unseen_categories_total", "field" => field).increment(1);
    }
}
