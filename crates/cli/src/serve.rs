//! `retail-api serve`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::{Artifact, ModelKind};
use retail_server::store::S3Url;
use retail_server::{AccessLog, AppState, ConnLimits, ModelConfig, ModelSlot, ModelSource, Models, ServerConfig};

use retail_model::forecast::FORECAST_MODEL_NAME;

use crate::models_config::{self, Planned};

/// What `serve --help` says about logging (read by [`crate::telemetry`], not flags).
pub const LOGGING_HELP: &str = "Logging (environment only):
  LOG_FORMAT=json|text  json: one JSON object per line, fields at the top level (containers);
                        text (default): human lines, coloured only when stderr is a terminal
  RUST_LOG=FILTER       level and targets, e.g. `info` (default), `debug`,
                        `info,retail_server=debug`; S3 client retries show from `debug`";

/// `retail-api serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 8000)]
    port: u16,
    /// Model artifact to serve: a directory or `.tar.gz` path, `file://…`, or `s3://bucket/key.tar.gz`
    /// (default: the embedded model).
    #[arg(long, env = "MODEL_URI")]
    model_uri: Option<String>,
    /// SageMaker Model Registry package group: serve its newest approved version (when
    /// `--model-uri` is unset).
    #[arg(long, env = "MODEL_PACKAGE_GROUP")]
    model_package_group: Option<String>,
    /// S3 bucket of the model's `model.tar.gz` (with `--model-key`; the seed's variables; when
    /// neither `--model-uri` nor `--model-package-group` is set).
    #[arg(long, env = "MODEL_BUCKET")]
    model_bucket: Option<String>,
    /// S3 key of the model's `model.tar.gz` (with `--model-bucket`).
    #[arg(long, env = "MODEL_KEY")]
    model_key: Option<String>,
    /// What serves while a remote model source is still loading: nothing (not ready), or the
    /// embedded model (reported in /model/info as a fallback). Keep `none` in production.
    #[arg(long, env = "MODEL_FALLBACK", value_enum, default_value_t = Fallback::None)]
    model_fallback: Fallback,
    /// Several models: a TOML file of `[[model]]` entries (name, source, poll_seconds,
    /// fallback) and an optional `default` (instead of the single-model settings above).
    #[arg(long, env = "MODELS_CONFIG")]
    models_config: Option<PathBuf>,
    /// Several models as `name=source,name=source` (sources as in MODELS_CONFIG: a path,
    /// file://, s3://, registry:<group>, embedded).
    #[arg(long, env = "MODELS")]
    models: Option<String>,
    /// The model the unqualified routes (/predict, /model/info, /invocations, …) serve
    /// (default: the config file's `default`, else the first model).
    #[arg(long, env = "DEFAULT_MODEL")]
    default_model: Option<String>,
    /// Most records in one batch call.
    #[arg(long, env = "MAX_BATCH_ROWS", default_value_t = ServerConfig::default().max_batch_rows)]
    max_batch_rows: usize,
    /// Largest body of `/predict`, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = ServerConfig::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Largest body of a batch call (`/predict/batch`, `/invocations`, v2 infer), in bytes.
    #[arg(long, env = "MAX_BATCH_BODY_BYTES", default_value_t = ServerConfig::default().max_batch_body_bytes)]
    max_batch_body_bytes: usize,
    /// Request bodies held in memory at once across all requests, in bytes; a body waits (up to
    /// the body read timeout) while the budget is spent.
    #[arg(long, env = "MAX_BUFFERED_BODY_BYTES", default_value_t = ServerConfig::default().max_buffered_body_bytes)]
    max_buffered_body_bytes: usize,
    /// Seconds a scoring request's body may take to arrive (408 after), before it takes a permit.
    #[arg(long, env = "BODY_READ_TIMEOUT_SECONDS", default_value_t = ServerConfig::default().body_read_timeout.as_secs_f64())]
    body_read_timeout_seconds: f64,
    /// Most TCP connections open at once (default: the open-file limit less 64, at most 4096).
    /// Beyond it the oldest connection not busy with a request is closed; when all are busy,
    /// new connections are refused.
    #[arg(long, env = "MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a client may take to send a request head.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = ServerConfig::default().connections.header_read_timeout.as_secs_f64())]
    header_read_timeout_seconds: f64,
    /// Seconds a kept-alive connection may sit idle; keep it above the load balancer's idle
    /// timeout (ALB: 60 s) so the balancer closes first.
    #[arg(long, env = "KEEP_ALIVE_TIMEOUT_SECONDS", default_value_t = ServerConfig::default().connections.idle_timeout.as_secs_f64())]
    keep_alive_timeout_seconds: f64,
    /// Access log: a line per request (`all`), for status >= 400 only (`errors`), or none.
    #[arg(long, env = "ACCESS_LOG", value_enum, default_value_t = AccessLogArg::All)]
    access_log: AccessLogArg,
    /// Comma-separated networks (CIDR) of proxies whose `X-Forwarded-For` names the client in the
    /// access log, e.g. the VPC's range behind an ALB.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Comma-separated browser origins allowed to call the API (CORS), e.g.
    /// `https://app.example.com`; `*` for any. Empty: no CORS headers.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',')]
    cors_allowed_origins: Vec<String>,
    /// Most scoring requests handled at once; more are answered 429 with Retry-After.
    #[arg(long, env = "MAX_CONCURRENT_REQUESTS", default_value_t = ServerConfig::default().max_concurrent_requests)]
    max_concurrent_requests: usize,
    /// Longest a scoring request may take, in milliseconds, before it is answered 503.
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = ServerConfig::default().request_timeout.as_millis() as u64)]
    request_timeout_ms: u64,
    /// Seconds between checks of the model source for a new version (0: never): file times of a
    /// local artifact, the S3 object's ETag, the registry's newest approved version.
    #[arg(long, env = "MODEL_POLL_SECONDS", default_value_t = 0.0)]
    model_poll_seconds: f64,
    /// After SIGTERM, seconds the server keeps accepting while /ready answers 503 (so load
    /// balancers take it out of rotation first).
    #[arg(long, env = "DRAIN_DELAY_SECONDS", default_value_t = 0.0)]
    drain_delay_seconds: f64,
    /// After SIGTERM, seconds until the process exits even with requests in flight.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = ServerConfig::default().shutdown_grace.as_secs_f64())]
    shutdown_grace_seconds: f64,
    #[command(flatten)]
    auth: crate::auth::AuthArgs,
    #[command(flatten)]
    capture: crate::capture::CaptureArgs,
    #[command(flatten)]
    drift: crate::drift_args::DriftArgs,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<ServerConfig> {
        if self.max_batch_rows == 0 || self.max_concurrent_requests == 0 || self.request_timeout_ms == 0 {
            bail!("--max-batch-rows, --max-concurrent-requests and --request-timeout-ms must be positive");
        }
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value)
                .map_err(|_| anyhow::anyhow!("--{name} must be a non-negative number of seconds, got {value}"))
        };
        let drain_delay = seconds("drain-delay-seconds", self.drain_delay_seconds)?;
        let model_poll = seconds("model-poll-seconds", self.model_poll_seconds)?;
        let shutdown_grace = seconds("shutdown-grace-seconds", self.shutdown_grace_seconds)?;
        if shutdown_grace <= drain_delay {
            bail!("--shutdown-grace-seconds must be longer than --drain-delay-seconds");
        }
        let positive = |name: &str, value: f64| match seconds(name, value)? {
            d if d.is_zero() => bail!("--{name} must be positive"),
            d => Ok(d),
        };
        let largest_body = self.max_body_bytes.max(self.max_batch_body_bytes);
        if self.max_body_bytes == 0 || self.max_batch_body_bytes == 0 || self.max_buffered_body_bytes < largest_body {
            bail!("body limits must be positive, and --max-buffered-body-bytes at least the largest body limit");
        }
        let max_connections = self.max_connections.unwrap_or_else(|| default_max_connections(open_file_limit()));
        if max_connections == 0 {
            bail!("--max-connections must be positive");
        }
        Ok(ServerConfig {
            addr: SocketAddr::new(self.host, self.port),
            max_batch_rows: self.max_batch_rows,
            max_body_bytes: self.max_body_bytes,
            max_batch_body_bytes: self.max_batch_body_bytes,
            max_buffered_body_bytes: self.max_buffered_body_bytes,
            body_read_timeout: positive("body-read-timeout-seconds", self.body_read_timeout_seconds)?,
            max_concurrent_requests: self.max_concurrent_requests,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            connections: ConnLimits {
                max_connections,
                header_read_timeout: positive("header-read-timeout-seconds", self.header_read_timeout_seconds)?,
                idle_timeout: positive("keep-alive-timeout-seconds", self.keep_alive_timeout_seconds)?,
            },
            access_log: match self.access_log {
                AccessLogArg::All => AccessLog::All,
                AccessLogArg::Errors => AccessLog::Errors,
                AccessLogArg::Off => AccessLog::Off,
            },
            trusted_proxies: self.trusted_proxies.clone(),
            cors_allowed_origins: self
                .cors_allowed_origins
                .iter()
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            drain_delay,
            shutdown_grace,
            model_poll: (!model_poll.is_zero()).then_some(model_poll),
            capture: self.capture.config()?,
            drift: self.drift.settings()?,
        })
    }
}

/// Threads for blocking work (model loads, batch scoring, which also holds a scoring slot);
/// tokio's default of 512 let timed-out batches pile up threads.
const MAX_BLOCKING_THREADS: usize = 64;

/// File descriptors kept for everything but client connections (model files, the store, logs).
const RESERVED_FDS: u64 = 64;

/// Most connections by default, whatever the open-file limit: about 20 KiB each when idle, so
/// 4096 stay within tens of MiB.
const MAX_DEFAULT_CONNECTIONS: u64 = 4096;

/// The default connection cap for an open-file limit.
fn default_max_connections(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(RESERVED_FDS).clamp(16, MAX_DEFAULT_CONNECTIONS)).unwrap_or(16)
}

/// Raises the soft open-file limit to the hard limit; returns the soft limit now in force.
fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-file limit");
            open_file_limit()
        }
    }
}

fn open_file_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// `--access-log` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AccessLogArg {
    /// Every request.
    All,
    /// Status >= 400 only.
    Errors,
    /// None.
    Off,
}

/// `--model-fallback` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Fallback {
    /// Not ready until the configured model loads.
    None,
    /// Serve the embedded model meanwhile.
    Embedded,
}

/// Where the model comes from: `--model-uri`, else `--model-package-group`, else the seed's
/// `--model-bucket` + `--model-key`, else the embedded model.
fn model_source(
    uri: Option<&str>,
    group: Option<&str>,
    bucket: Option<&str>,
    key: Option<&str>,
) -> anyhow::Result<ModelSource> {
    let Some(uri) = uri.filter(|u| !u.is_empty()) else {
        if let Some(group) = group.filter(|g| !g.is_empty()) {
            return Ok(ModelSource::Registry { group: group.to_owned() });
        }
        return match (bucket.filter(|b| !b.is_empty()), key.filter(|k| !k.is_empty())) {
            (Some(bucket), Some(key)) => Ok(ModelSource::S3(S3Url { bucket: bucket.to_owned(), key: key.to_owned() })),
            (None, None) => Ok(ModelSource::Embedded(ModelKind::BasketClassifier)),
            _ => bail!("MODEL_BUCKET and MODEL_KEY go together: set both, or neither"),
        };
    };
    models_config::source(uri).context("MODEL_URI")
}

impl ServeArgs {
    /// The models to serve and the default's name: from MODELS_CONFIG, MODELS, or the
    /// single-model settings (one model named as the crate's model).
    fn plan(&self, poll: Option<Duration>) -> anyhow::Result<(Vec<Planned>, Option<String>)> {
        let single = [&self.model_uri, &self.model_package_group, &self.model_bucket, &self.model_key]
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| !v.is_empty()));
        let list = self.models.as_deref().filter(|m| !m.trim().is_empty());
        let (planned, default) = match (&self.models_config, list) {
            (Some(_), Some(_)) => bail!("set MODELS_CONFIG or MODELS, not both"),
            (Some(_), None) | (None, Some(_)) if single => {
                bail!(
                    "MODELS_CONFIG / MODELS configure every model: unset MODEL_URI, MODEL_PACKAGE_GROUP, MODEL_BUCKET and MODEL_KEY"
                )
            }
            (Some(path), None) => models_config::from_file(path, poll)?,
            (None, Some(list)) => (models_config::from_list(list, poll)?, None),
            (None, None) if !single => (embedded_models(poll), None),
            (None, None) => {
                let source = model_source(
                    self.model_uri.as_deref(),
                    self.model_package_group.as_deref(),
                    self.model_bucket.as_deref(),
                    self.model_key.as_deref(),
                )?;
                let config = ModelConfig { name: retail_model::MODEL_NAME.to_owned(), source, poll };
                let fallback = (self.model_fallback == Fallback::Embedded).then_some(ModelKind::BasketClassifier);
                (vec![Planned { config, fallback }], None)
            }
        };
        Ok((planned, self.default_model.clone().filter(|d| !d.is_empty()).or(default)))
    }
}

/// With no model configured: the embedded models, the basket classifier (the default, as
/// before), the sales forecast and, when this build embeds one (`models/tabular`), the tabular
/// classifier under its manifest name, so every request of the seeds works out of the box.
fn embedded_models(poll: Option<Duration>) -> Vec<Planned> {
    let mut models =
        vec![(retail_model::MODEL_NAME, ModelKind::BasketClassifier), (FORECAST_MODEL_NAME, ModelKind::SalesForecast)];
    match retail_server::embedded_tabular_name() {
        Some(name) if models.iter().all(|(other, _)| *other != name) => {
            models.push((name, ModelKind::TabularClassifier));
        }
        Some(name) => tracing::warn!(name, "the embedded tabular model's name is taken; not served"),
        None => {}
    }
    models
        .into_iter()
        .map(|(name, kind)| Planned {
            config: ModelConfig { name: name.to_owned(), source: ModelSource::Embedded(kind), poll },
            fallback: None,
        })
        .collect()
}

/// Loads what serves in `slot` at start-up. Local and embedded sources fail fast (a wrong path is
/// a configuration error); a remote store may be down at start-up, so its model starts not
/// ready (or on the embedded fallback) and the server keeps trying.
fn load_at_start(slot: &ModelSlot, fallback: Option<ModelKind>) -> anyhow::Result<()> {
    let name = slot.name();
    match slot.configured_source() {
        source @ ModelSource::Embedded(kind) => {
            let artifact =
                Artifact::embedded(*kind).with_context(|| format!("model {name}: no embedded {}", kind.as_str()))?;
            slot.serve_now(artifact, source.clone());
        }
        source @ ModelSource::Local(path) => {
            let artifact =
                Artifact::load(&PathBuf::from(path)).with_context(|| format!("model {name}: cannot load {path}"))?;
            slot.serve_now(artifact, source.clone());
        }
        ModelSource::S3(_) | ModelSource::Registry { .. } => {
            if let Some(kind) = fallback {
                let artifact = Artifact::embedded(kind).context("cannot load the embedded fallback model")?;
                slot.serve_now(artifact, ModelSource::Embedded(kind));
            }
        }
    }
    Ok(())
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let open_files = raise_open_file_limit();
    let config = args.config()?;
    let (planned, default) = args.plan(config.model_poll)?;
    let auth = args.auth.auth()?;
    tracing::info!(open_files, max_connections = config.connections.max_connections, "limits");
    let addr = config.addr;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    let models = Models::new(planned.iter().map(|p| p.config.clone()).collect(), default.as_deref())?;
    let state = AppState::with_models(models, config);
    for (slot, plan) in state.models().iter().zip(&planned) {
        load_at_start(slot, plan.fallback)?;
    }
    if auth.is_enabled() && state.config.cors_allowed_origins.iter().any(|o| o == "*") {
        bail!("CORS_ALLOWED_ORIGINS=* is refused while authentication is on: name the origins that may call the API");
    }
    if let Some(capture) = &state.config.capture {
        tracing::info!(percent = capture.sample_percent, target = %capture.target, "payload capture on");
    }
    let state = Arc::new(state.with_auth(auth));
    runtime.block_on(retail_server::serve(state)).with_context(|| format!("cannot serve on {addr}"))
}

/// `retail-api openapi`: the document `/openapi.json` serves (and `docs/openapi.json` holds).
#[allow(clippy::print_stdout)]
pub fn print_openapi() -> anyhow::Result<()> {
    println!("{}", retail_server::openapi().to_pretty_json()?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_uri_forms() {
        let source = |uri: Option<&str>| model_source(uri, None, None, None);
        assert_eq!(source(None).expect("none"), ModelSource::Embedded(ModelKind::BasketClassifier));
        assert_eq!(source(Some("")).expect("empty"), ModelSource::Embedded(ModelKind::BasketClassifier));
        assert_eq!(source(Some("/m")).expect("path"), ModelSource::Local("/m".into()));
        assert_eq!(source(Some("file:///m.tar.gz")).expect("file"), ModelSource::Local("/m.tar.gz".into()));
        let s3 = ModelSource::S3(S3Url { bucket: "b".into(), key: "a/model.tar.gz".into() });
        assert_eq!(source(Some("s3://b/a/model.tar.gz")).expect("s3"), s3);
        assert_eq!(model_source(None, None, Some("b"), Some("a/model.tar.gz")).expect("seed variables"), s3);
        assert!(model_source(None, None, Some("b"), None).is_err(), "bucket without key");
        let registry = ModelSource::Registry { group: "g".into() };
        assert_eq!(model_source(None, Some("g"), Some("b"), Some("k")).expect("group first"), registry);
        assert_eq!(
            model_source(Some("/m"), Some("g"), None, None).expect("uri first"),
            ModelSource::Local("/m".into())
        );
        assert!(source(Some("s3://b")).is_err());
        assert!(source(Some("ftp://x/y")).is_err());
    }

    #[test]
    fn the_default_connection_cap_leaves_file_descriptors_for_the_rest() {
        assert_eq!(default_max_connections(1024), 960);
        assert_eq!(default_max_connections(1_048_576), 4096);
        assert_eq!(default_max_connections(10), 16);
    }
}
