//! Prometheus metrics (`retail_api_…`), labelled by route template, method, status, class,
//! field and model version — never by raw paths or user values.

use std::sync::OnceLock;

use metrics::{Counter, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use retail_model::artifact::Artifact;
use retail_model::features::{FEATURE_NAMES, FIRST_CATEGORICAL, Unseen};

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
    metrics::describe_counter!(
        "retail_api_model_reloads_total",
        "Attempts to load a model version, by result (loaded, refused, unavailable)"
    );
    metrics::describe_gauge!(
        "retail_api_build_info",
        "The running binary (value 1), by version, commit, branch and build date"
    );
}

/// Installs the recorder (once) so that everything recorded from now on is exported.
pub fn init() {
    handle();
}

/// The exposition text for `GET /metrics`.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Records the served model (and that `replaced` no longer is) and the build.
pub fn record_model(artifact: &Artifact, source: &ModelSource, replaced: Option<(&Artifact, &ModelSource)>) {
    handle();
    if let Some((old, old_source)) = replaced {
        let m = &old.manifest;
        gauge!("retail_api_model_info", "name" => m.name.clone(), "version" => m.version.clone(), "source" => old_source.kind())
            .set(0.0);
    }
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

/// Records a load attempt: `loaded`, `refused` (did not verify) or `unavailable` (source unreachable).
pub fn record_reload(result: &'static str) {
    counter!("retail_api_model_reloads_total", "result" => result).increment(1);
}

/// Adjusts the in-flight gauge (its handle is registered once).
pub fn in_flight(delta: f64) {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| gauge!("retail_api_requests_in_flight")).increment(delta);
}

/// Counters of scored baskets, registered once per model so the hot path only increments.
#[derive(Debug)]
pub struct PredictionCounters {
    by_class: Vec<Counter>,
    unseen: Vec<(&'static str, Counter)>,
}

impl PredictionCounters {
    /// Registers the counters of a model's classes and categorical features.
    pub fn new(artifact: &Artifact) -> Self {
        handle();
        let version = artifact.manifest.version.clone();
        let by_class = artifact
            .manifest
            .classes
            .iter()
            .map(|c| counter!("retail_api_predictions_total", "class" => c.code.clone(), "model_version" => version.clone()))
            .collect();
        let unseen = FEATURE_NAMES[FIRST_CATEGORICAL..]
            .iter()
            .map(|&field| (field, counter!("retail_api_unseen_categories_total", "field" => field)))
            .collect();
        Self { by_class, unseen }
    }

    /// Counts one basket predicted as class `class` with these unseen fields.
    pub fn record(&self, class: usize, unseen: &[Unseen]) {
        if let Some(counter) = self.by_class.get(class) {
            counter.increment(1);
        }
        for u in unseen {
            if let Some((_, counter)) = self.unseen.iter().find(|(field, _)| *field == u.field) {
                counter.increment(1);
            }
        }
    }
}
