//! retail-server: the HTTP API over a loaded model — health and readiness, single and batch
//! predictions (the seed's flat record and its `basket_items` shape, both through the shared
//! feature pipeline), model information and metrics, Prometheus metrics, build information,
//! OpenAPI with Swagger UI, and a web page. One JSON error shape; graceful shutdown.

pub mod auth;
pub mod capture;
mod credentials;
mod docs;
pub mod drift;
pub mod edge;
mod error;
mod metrics;
pub mod models;
pub mod registry;
mod reload;
mod routes;
pub mod schema;
pub mod scoring;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use auth::openapi::SecuritySchemes;
use axum::Router;
use retail_model::artifact::{Artifact, ModelKind};
use tokio::sync::Semaphore;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use edge::access_log::AccessLog;
pub use edge::conn::ConnLimits;
pub use error::ApiError;
pub use models::{LoadedModel, ModelConfig, ModelSlot, Models};
pub use routes::Scored;

/// Where the served model came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// A default model compiled into the binary: the basket classifier, or the sales forecast.
    Embedded(ModelKind),
    /// A local artifact directory or `.tar.gz`.
    Local(String),
    /// A `model.tar.gz` in S3 or an S3-compatible store.
    S3(store::S3Url),
    /// The newest approved version in a SageMaker Model Registry package group.
    Registry {
        /// Model package group.
        group: String,
    },
}

impl ModelSource {
    /// Short name used in answers and metrics (`embedded`, `local`, `s3`, `registry`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Embedded(_) => "embedded",
            Self::Local(_) => "local",
            Self::S3(_) => "s3",
            Self::Registry { .. } => "registry",
        }
    }

    /// Where exactly (`embedded`, `embedded:retail-sales-forecast`, `embedded:<the embedded
    /// tabular model's name>`, the path, the `s3://` URI, or `registry:<group>`).
    pub fn location(&self) -> String {
        match self {
            Self::Embedded(ModelKind::BasketClassifier) => "embedded".to_owned(),
            Self::Embedded(ModelKind::SalesForecast) => {
                format!("embedded:{}", retail_model::forecast::FORECAST_MODEL_NAME)
            }
            Self::Embedded(ModelKind::TabularClassifier) => {
                format!("embedded:{}", embedded_tabular_name().unwrap_or("tabular"))
            }
            Self::Embedded(ModelKind::TabularRegressor) => "embedded:tabular-regressor".to_owned(),
            Self::Local(path) => path.clone(),
            Self::S3(url) => url.to_string(),
            Self::Registry { group } => format!("registry:{group}"),
        }
    }
}

/// The manifest name of the tabular classifier embedded in this build (`models/tabular`), if it
/// has one: what `embedded:<name>` sources name. Loaded and verified once.
pub fn embedded_tabular_name() -> Option<&'static str> {
    static NAME: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    NAME.get_or_init(|| Artifact::embedded(ModelKind::TabularClassifier).ok().map(|a| a.manifest.name)).as_deref()
}

/// Limits and timings of the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Most records in one batch call.
    pub max_batch_rows: usize,
    /// Largest body of a single prediction, in bytes.
    pub max_body_bytes: usize,
    /// Largest body of a batch call, in bytes.
    pub max_batch_body_bytes: usize,
    /// Request bodies held in memory at once, across all requests, in bytes.
    pub max_buffered_body_bytes: usize,
    /// Longest a scoring request's body may take to arrive (408 after).
    pub body_read_timeout: Duration,
    /// Most prediction requests handled at once; more get 429.
    pub max_concurrent_requests: usize,
    /// Longest a prediction request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Connection count and timeouts.
    pub connections: ConnLimits,
    /// Which requests get an access-log line.
    pub access_log: AccessLog,
    /// Peers whose `X-Forwarded-For` names the client (load balancers, proxies).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Browser origins allowed to call the API (CORS); empty: no CORS headers at all.
    pub cors_allowed_origins: Vec<String>,
    /// After SIGTERM: how long the server keeps accepting (while `/ready` answers 503) so load
    /// balancers take it out of rotation before the listener closes.
    pub drain_delay: Duration,
    /// After SIGTERM: how long until the process exits even with requests still in flight.
    pub shutdown_grace: Duration,
    /// How often to check a model's source for a new version (`None`: never), for models that
    /// do not set their own interval.
    pub model_poll: Option<Duration>,
    /// Payload capture of sampled scoring requests (`None`: off).
    pub capture: Option<capture::CaptureConfig>,
    /// Drift windows and verdicts.
    pub drift: drift::DriftSettings,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 8000)),
            max_batch_rows: 10_000,
            max_body_bytes: 1024 * 1024,
            max_batch_body_bytes: 16 * 1024 * 1024,
            max_buffered_body_bytes: 64 * 1024 * 1024,
            body_read_timeout: Duration::from_secs(10),
            max_concurrent_requests: 512,
            request_timeout: Duration::from_secs(10),
            connections: ConnLimits {
                max_connections: 1024,
                header_read_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(75),
            },
            access_log: AccessLog::All,
            trusted_proxies: Vec::new(),
            cors_allowed_origins: Vec::new(),
            drain_delay: Duration::ZERO,
            shutdown_grace: Duration::from_secs(20),
            model_poll: None,
            capture: None,
            drift: drift::DriftSettings::default(),
        }
    }
}

/// Shared state of the handlers.
///
/// Each served model sits behind its own atomic swap ([`ModelSlot`]): each request takes one
/// snapshot and finishes on it, so a reload never blocks a request and a request never sees two
/// versions. A model may not be loaded yet (a remote source still loading): the server is then
/// live but not ready.
#[derive(Debug)]
pub struct AppState {
    models: Models,
    /// Limits.
    pub config: ServerConfig,
    draining: AtomicBool,
    permits: Semaphore,
    body_budget: edge::admission::BodyBudget,
    /// Scoring slots on the blocking pool (`routes::predict::scoring_slots`).
    scoring: Arc<Semaphore>,
    /// Who may call what (off unless configured, see [`AppState::with_auth`]).
    pub auth: Arc<auth::Auth>,
    /// Payload capture, when configured.
    capture: Option<capture::Capture>,
}

impl AppState {
    /// State serving one model, `artifact`, loaded from its configured `source`, under the name
    /// in its manifest.
    pub fn new(artifact: Artifact, source: ModelSource, config: ServerConfig) -> Self {
        let name = artifact.manifest.name.clone();
        let state = Self::single(&name, source.clone(), config);
        state.models.default_slot().serve_now(artifact, source);
        state
    }

    /// State serving one model, named [`retail_model::MODEL_NAME`], whose configured source is
    /// still to be loaded; `fallback` (the embedded model, if allowed) serves meanwhile, reported
    /// as such.
    pub fn starting(configured: ModelSource, config: ServerConfig, fallback: Option<Artifact>) -> Self {
        let state = Self::single(retail_model::MODEL_NAME, configured, config);
        if let Some(artifact) = fallback {
            state.models.default_slot().serve_now(artifact, ModelSource::Embedded(ModelKind::BasketClassifier));
        }
        state
    }

    fn single(name: &str, source: ModelSource, config: ServerConfig) -> Self {
        let slot = ModelConfig { name: name.to_owned(), source, poll: config.model_poll };
        // One model with a valid name cannot fail; a manifest name that routes cannot carry
        // keeps serving under the crate's model name.
        let models = Models::new(vec![slot.clone()], None).unwrap_or_else(|_| {
            let renamed = ModelConfig { name: retail_model::MODEL_NAME.to_owned(), ..slot };
            Models::new(vec![renamed], None).expect("the crate's model name is valid")
        });
        Self::with_models(models, config)
    }

    /// State serving `models` (load them into their slots with [`ModelSlot::serve_now`], or let
    /// [`serve`] load them in the background).
    pub fn with_models(models: Models, config: ServerConfig) -> Self {
        metrics::init(config.request_timeout);
        models.set_drift_window(&config.drift);
        let permits = Semaphore::new(config.max_concurrent_requests);
        let body_budget = edge::admission::BodyBudget::new(config.max_buffered_body_bytes);
        let scoring = Arc::new(Semaphore::new(routes::predict::scoring_slots()));
        let capture = config.capture.clone().map(capture::Capture::new);
        let draining = AtomicBool::new(false);
        Self { models, config, draining, permits, body_budget, scoring, auth: Arc::default(), capture }
    }

    /// This state with credentials checked as `auth` says.
    #[must_use]
    pub fn with_auth(mut self, auth: auth::Auth) -> Self {
        self.auth = Arc::new(auth);
        self
    }

    /// Every configured model.
    pub fn models(&self) -> &Models {
        &self.models
    }

    /// The default model serving now, if any (a snapshot: keep it for the whole request).
    pub fn model(&self) -> Option<Arc<LoadedModel>> {
        self.models.default_slot().model()
    }

    /// The default model serving now, or 503 while none is loaded.
    pub fn serving(&self) -> Result<Arc<LoadedModel>, ApiError> {
        self.models.default_slot().serving()
    }

    /// The source the default model is configured to load from.
    pub fn configured_source(&self) -> &ModelSource {
        self.models.default_slot().configured_source()
    }

    /// Marks the server as shutting down: readiness turns 503 at once.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Ready to serve: every configured model has a version serving and the server is not draining.
    fn is_ready(&self) -> bool {
        !self.is_draining() && self.models.all_serving()
    }
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&SecuritySchemes),
    info(
        title = "retail-api",
        description = "Predicts the price sensitivity of a shopping basket (dunnhumby BASKET_PRICE_SENSITIVITY): LA less affluent, MM mid-market, UM up-market."
    ),
    tags(
        (name = "predict", description = "Score baskets, days of sales and tabular rows"),
        (name = "model", description = "The served model"),
        (name = "operations", description = "Health, readiness, metrics, build information"),
        (name = "inference protocol v2", description = "Open Inference Protocol v2 (KServe, Triton clients)"),
        (name = "sagemaker", description = "SageMaker hosting container contract")
    )
)]
struct ApiDoc;

/// The documented routes: a route cannot exist without its OpenAPI entry. The scoring routes
/// form two groups (single records, batches) that pass [`edge::admission`] with their body limit;
/// those and the model and metrics groups are [`edge::guarded`] by the scope they need; the rest
/// is public. `state` is absent when only the document is wanted.
fn api(state: Option<&Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    use auth::Scope;
    use routes::{card, explain, health, meta, model, models, predict, sagemaker, v2};
    let config = state.map_or_else(ServerConfig::default, |s| s.config.clone());
    let admitted = |routes: OpenApiRouter<Arc<AppState>>, limit: usize| match state {
        Some(state) => routes
            .route_layer(axum::middleware::from_fn_with_state(state.clone(), capture::layer))
            .route_layer(axum::middleware::from_fn_with_state(
                (state.clone(), edge::admission::BodyLimit(limit)),
                edge::admission::admit,
            ))
            .route_layer(axum::extract::DefaultBodyLimit::disable()),
        None => routes,
    };
    let guarded = |routes, scope| edge::guarded(routes, state.map(|s| &s.auth), scope);
    let scoring = docs::scoring_errors();
    let (named_scoring, named_model) = (docs::naming_a_model(&scoring), docs::naming_a_model(&docs::model_errors()));
    let single = docs::with_errors(OpenApiRouter::new().routes(routes!(predict::predict)), &scoring)
        .merge(docs::with_errors(OpenApiRouter::new().routes(routes!(predict::model_predict)), &named_scoring))
        .merge(docs::with_errors(
            OpenApiRouter::new().routes(routes!(predict::predict_single)),
            &docs::tabular_errors(&scoring),
        ));
    let batches = OpenApiRouter::new()
        .routes(routes!(predict::batch))
        .routes(routes!(predict::batch_alias))
        .routes(routes!(v2::infer))
        .routes(routes!(v2::infer_version));
    let named_batches =
        OpenApiRouter::new().routes(routes!(predict::model_batch)).routes(routes!(sagemaker::invocations));
    let batches = docs::with_errors(batches, &scoring).merge(docs::with_errors(named_batches, &named_scoring));
    let model = OpenApiRouter::new()
        .routes(routes!(model::info))
        .routes(routes!(model::info_alias))
        .routes(routes!(model::metrics))
        .routes(routes!(model::drift))
        .routes(routes!(explain::importance))
        .routes(routes!(v2::model_metadata))
        .routes(routes!(v2::model_version_metadata));
    let named_model_routes = OpenApiRouter::new()
        .routes(routes!(model::model_info))
        .routes(routes!(model::model_metrics))
        .routes(routes!(model::model_drift))
        .routes(routes!(explain::model_importance));
    let model =
        docs::with_errors(model, &docs::model_errors()).merge(docs::with_errors(named_model_routes, &named_model));
    let cards = docs::with_errors(OpenApiRouter::new().routes(routes!(card::card)), &docs::card_errors()).merge(
        docs::with_errors(
            OpenApiRouter::new().routes(routes!(card::model_card)),
            &docs::naming_a_model(&docs::card_errors()),
        ),
    );
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::healthz))
        .routes(routes!(health::ready))
        .routes(routes!(models::ready))
        .merge(guarded(admitted(single, config.max_body_bytes), Scope::Predict))
        .merge(guarded(admitted(batches, config.max_batch_body_bytes), Scope::Predict))
        .merge(guarded(model, Scope::ModelRead))
        .merge(guarded(cards, Scope::ModelRead))
        .merge(guarded(OpenApiRouter::new().routes(routes!(models::list)), Scope::ModelRead))
        .routes(routes!(meta::version))
        .merge(guarded(OpenApiRouter::new().routes(routes!(meta::prometheus)), Scope::MetricsRead))
        .routes(routes!(sagemaker::ping))
        .routes(routes!(v2::server_metadata))
        .routes(routes!(v2::live))
        .routes(routes!(v2::ready))
        .routes(routes!(v2::model_ready))
        .routes(routes!(v2::model_version_ready))
}

/// The OpenAPI document of the API (what `/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api(None).into_openapi()
}

/// The API's routes with the edge's middleware.
pub fn router(state: Arc<AppState>) -> Router {
    let (api_routes, openapi) = api(Some(&state)).split_for_parts();
    let pages = edge::page_headers(
        Router::new()
            .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
            .route("/", axum::routing::get(routes::page::page)),
    );
    let routes =
        api_routes.merge(pages).fallback(routes::not_found).method_not_allowed_fallback(routes::method_not_allowed);
    edge::stack(routes, state)
}

/// Serves until SIGTERM or Ctrl-C. Then `/ready` answers 503 at once; the server keeps
/// accepting for the drain delay, stops accepting, lets in-flight requests finish, and exits when
/// they have, or when the grace period (counted from the signal) is over.
pub async fn serve(state: Arc<AppState>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(state.config.addr).await?;
    // The JWKS is fetched before serving starts, so the first tokens find their keys.
    state.auth.start().await;
    // Installed before "serving" is logged: from then on a signal drains the server.
    let signalled = shutdown_signal();
    let versions: Vec<String> = state
        .models()
        .iter()
        .map(|slot| {
            let version = slot.model().map_or_else(|| "none yet".to_owned(), |m| m.artifact.manifest.version.clone());
            format!("{} {} from {}", slot.name(), version, slot.configured_source().location())
        })
        .collect();
    let default = state.models().default_slot();
    tracing::info!(
        addr = %listener.local_addr()?,
        model = default.model().as_ref().map_or("none yet", |m| m.artifact.manifest.version.as_str()),
        source = %default.configured_source().location(),
        default = default.name(),
        models = %versions.join("; "),
        "serving"
    );
    if !state.auth.is_enabled() && !listener.local_addr()?.ip().is_loopback() {
        tracing::warn!(
            "no authentication configured (JWT_SECRET_KEY, JWT_JWKS_URL or API_KEYS_FILE) and listening beyond loopback: anyone who can reach this port can use the API"
        );
    }
    for slot in state.models().iter() {
        tokio::spawn(reload::load_then_watch(state.clone(), slot.clone()));
    }
    // A configured source not loaded yet (or covered by the fallback) is loaded in the background,
    // with backoff; its watcher starts once it has loaded.
    tokio::spawn(metrics::upkeep());
    let capture = state.capture.as_ref().and_then(capture::Capture::start);
    let app = router(state.clone());
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_state = state.clone();
    let server = edge::conn::serve(listener, app, state.config.connections, async move {
        signalled.await;
        drain_state.start_draining();
        let _ = signalled_tx.send(());
        tracing::info!(
            drain_delay_seconds = drain_state.config.drain_delay.as_secs_f64(),
            "shutdown signal: not ready, draining"
        );
        tokio::time::sleep(drain_state.config.drain_delay).await;
        tracing::info!("no longer accepting; finishing in-flight requests");
    });
    let grace = state.config.shutdown_grace;
    let deadline = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(grace).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = server => tracing::info!("all requests finished; exiting"),
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs_f64(), "grace period over: exiting with requests still in flight");
        }
    }
    if let Some(writer) = capture {
        writer.finish(CAPTURE_FLUSH_TIMEOUT).await;
    }
    Ok(())
}

/// At shutdown, longest the capture writer may take to write what is queued.
const CAPTURE_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// SIGTERM, SIGINT (Ctrl-C) or SIGHUP: all three drain. SIGHUP drains rather than being
/// ignored because nothing here reloads on it (the model reloads by polling), and a terminal or
/// supervisor that hangs up means the process should go, cleanly. The handlers are installed when
/// this is called, not when the future is first polled: a signal that arrives right after the
/// server says it is serving must drain it, not kill it with the signal's default action.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn received(stream: Option<Signal>) {
        match stream {
            Some(mut stream) => {
                stream.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let [interrupt, terminate, hangup] =
        [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup()].map(|kind| signal(kind).ok());
    async move {
        tokio::select! {
            () = received(interrupt) => {}
            () = received(terminate) => {}
            () = received(hangup) => {}
        }
    }
}

/// Ctrl-C only, where there are no Unix signals.
#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
