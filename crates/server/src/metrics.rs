//! Prometheus metrics (`retail_api_…` and the standard `process_…`), labelled only from closed
//! sets: route templates, known methods, status codes, classes, fields, model versions — never
//! raw paths, methods or other user values. The request layer is [`requests::track`].

pub mod requests;

use std::sync::OnceLock;

use metrics::{Counter, counter, gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use retail_model::artifact::{Artifact, ModelKind};
use retail_model::features::{FEATURE_NAMES, FIRST_CATEGORICAL};
use retail_model::tabular::{ColumnKind, TabularWarning};

use crate::ModelSource;
use crate::scoring::Notes;

/// Most `field` label values of one model's unseen-category counter (a tabular model's
/// categorical columns: a closed set from its schema).
const MAX_FIELD_LABELS: usize = 256;

/// Latency buckets in seconds (without them the exporter renders summaries, not histograms);
/// [`init`] extends them to the request timeout when it is longer.
const LATENCY_BUCKETS: [f64; 16] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often histogram samples are folded into their buckets. The exporter keeps every sample
/// until this upkeep (or a scrape) drains it, so without it memory grows with each request when
/// nobody scrapes `/metrics`.
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use. `None` when another recorder
/// was installed first (metrics then go there).
fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

fn describe() {
    metrics::describe_counter!("retail_api_requests_total", "HTTP requests by route template, method and status");
    metrics::describe_histogram!(
        "retail_api_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    metrics::describe_gauge!("retail_api_requests_in_flight", "HTTP requests being handled");
    metrics::describe_counter!(
        "retail_api_predictions_total",
        "Records scored, by configured model, predicted class and model version"
    );
    metrics::describe_counter!(
        "retail_api_unseen_categories_total",
        "Category values scored as unseen, by configured model and field (a tabular model: its categorical column)"
    );
    metrics::describe_gauge!(
        "retail_api_model_info",
        "The served versions (value 1), by configured model, artifact name, version and source"
    );
    metrics::describe_counter!(
        "retail_api_model_reloads_total",
        "Attempts to load a model version, by configured model and result (loaded, refused, unavailable)"
    );
    metrics::describe_gauge!(
        "retail_api_build_info",
        "The running binary (value 1), by version, commit, branch and build date"
    );
    metrics::describe_gauge!("retail_api_connections_open", "TCP connections open");
    metrics::describe_counter!(
        "retail_api_connections_closed_total",
        "TCP connections closed, by reason (closed, error, header_timeout, idle_timeout, evicted, refused, shutdown, accept_error)"
    );
    metrics::describe_counter!(
        "retail_api_limits_hit_total",
        "Requests stopped by a limit (concurrent_requests, request_timeout, body_read_timeout, body_budget)"
    );
    metrics::describe_counter!(
        "retail_api_auth_failures_total",
        "Requests refused by auth, by reason (missing, malformed, expired, not_yet_valid, bad_signature, bad_algorithm, bad_claims, unknown_key, revoked_key, expired_key, insufficient_scope)"
    );
    metrics::describe_gauge!(
        "retail_api_feature_drift",
        "Drift of a feature's recent values from the training reference, by configured model, feature and statistic (psi, js, linf); NaN while the window is empty"
    );
    metrics::describe_gauge!(
        "retail_api_prediction_drift",
        "Drift of the recent predictions from the training reference, by configured model and statistic (psi, js, linf)"
    );
    metrics::describe_gauge!("retail_api_drift_window_rows", "Rows in a model's drift window, by configured model");
    metrics::describe_counter!(
        "retail_api_out_of_range_total",
        "Scored values outside a numeric feature's training range (widened by 10% of its span each side), by configured model and feature"
    );
    process_collector().describe();
}

fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

/// Installs the recorder (once) so that everything recorded from now on is exported; the
/// latency buckets reach `request_timeout`.
pub fn init(request_timeout: std::time::Duration) {
    HANDLE.get_or_init(|| {
        let timeout = request_timeout.as_secs_f64();
        let mut buckets = LATENCY_BUCKETS.to_vec();
        if timeout > buckets[buckets.len() - 1] {
            buckets.push(timeout);
        }
        let builder = PrometheusBuilder::new().set_buckets(&buckets).ok()?;
        let handle = builder.install_recorder().ok()?;
        describe();
        Some(handle)
    });
}

/// Folds recorded histogram samples into their buckets, every [`UPKEEP_EVERY`], forever.
pub async fn upkeep() {
    let mut ticker = tokio::time::interval(UPKEEP_EVERY);
    loop {
        ticker.tick().await;
        if let Some(handle) = handle() {
            handle.run_upkeep();
        }
    }
}

/// The exposition text for `GET /metrics`.
pub fn render() -> String {
    process_collector().collect();
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// Records the version serving as the configured model `model` (and that `replaced` no longer
/// is) and the build.
pub fn record_model(
    model: &str,
    artifact: &Artifact,
    source: &ModelSource,
    replaced: Option<(&Artifact, &ModelSource)>,
) {
    let info = |artifact: &Artifact, source: &ModelSource| {
        let m = &artifact.manifest;
        gauge!("retail_api_model_info", "model" => model.to_owned(), "name" => m.name.clone(), "version" => m.version.clone(), "source" => source.kind())
    };
    if let Some((old, old_source)) = replaced {
        info(old, old_source).set(0.0);
    }
    info(artifact, source).set(1.0);
    let b = crate::routes::meta::build();
    gauge!("retail_api_build_info", "version" => b.version, "git_commit" => b.git_commit, "git_branch" => b.git_branch, "build_date" => b.build_date).set(1.0);
}

/// Records a load attempt of the configured model `model`: `loaded`, `refused` (did not verify)
/// or `unavailable` (source unreachable).
pub fn record_reload(model: &str, result: &'static str) {
    counter!("retail_api_model_reloads_total", "model" => model.to_owned(), "result" => result).increment(1);
}

/// Sets the open-connections gauge.
pub fn connections_open(n: usize) {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| gauge!("retail_api_connections_open")).set(n as f64);
}

/// Counts a closed connection; `reason` is one of the documented closed set.
pub fn connection_closed(reason: &'static str) {
    counter!("retail_api_connections_closed_total", "reason" => reason).increment(1);
}

/// Counts a request stopped by `limit` (one of the documented closed set).
pub fn limit_hit(limit: &'static str) {
    counter!("retail_api_limits_hit_total", "limit" => limit).increment(1);
}

/// Counts a request refused by auth; `reason` is one of the documented closed set.
pub fn auth_failure(reason: &'static str) {
    counter!("retail_api_auth_failures_total", "reason" => reason).increment(1);
}

/// Counters of scored records, registered once per model so the hot path only increments.
#[derive(Debug)]
pub struct PredictionCounters {
    by_class: Vec<Counter>,
    /// Per field that can hold an unseen value (a closed set: the artifact's categorical fields
    /// or columns, at most the engine's feature count).
    unseen: Vec<(String, Counter)>,
}

impl PredictionCounters {
    /// Registers the counters of a model's classes and categorical features, as served under
    /// the configured name `model`.
    pub fn new(model: &str, artifact: &Artifact) -> Self {
        let version = artifact.manifest.version.clone();
        let by_class = artifact
            .manifest
            .classes
            .iter()
            .map(|c| counter!("retail_api_predictions_total", "model" => model.to_owned(), "class" => c.code.clone(), "model_version" => version.clone()))
            .collect();
        let fields: Vec<String> = match artifact.kind() {
            ModelKind::BasketClassifier => FEATURE_NAMES[FIRST_CATEGORICAL..].iter().map(|f| (*f).to_owned()).collect(),
            ModelKind::SalesForecast => vec!["store_id".to_owned(), "product_id".to_owned()],
            ModelKind::TabularClassifier | ModelKind::TabularRegressor => artifact
                .tabular()
                .map(|schema| schema.columns.iter())
                .into_iter()
                .flatten()
                .filter(|c| matches!(c.kind, ColumnKind::Categorical { .. }))
                .take(MAX_FIELD_LABELS)
                .map(|c| c.name.clone())
                .collect(),
        };
        let unseen = fields
            .into_iter()
            .map(|field| {
                let counter =
                    counter!("retail_api_unseen_categories_total", "model" => model.to_owned(), "field" => field.clone());
                (field, counter)
            })
            .collect();
        Self { by_class, unseen }
    }

    /// Counts one record predicted as class `class` (a regression: 0) with these warnings.
    pub fn record(&self, class: usize, notes: &Notes) {
        if let Some(counter) = self.by_class.get(class) {
            counter.increment(1);
        }
        let count = |field: &str| {
            if let Some((_, counter)) = self.unseen.iter().find(|(f, _)| f == field) {
                counter.increment(1);
            }
        };
        match notes {
            Notes::Pipeline { unseen, .. } => unseen.iter().for_each(|u| count(u.field)),
            Notes::Tabular { warnings, .. } => warnings.iter().for_each(|w| {
                if let TabularWarning::Unseen { column, .. } = w {
                    count(column);
                }
            }),
        }
    }
}
