//! retail-server: the HTTP API over a loaded model — health and readiness, predictions
//! (the seed's flat record and its `basket_items` shape, both through the shared feature
//! pipeline), model information and metrics, with one JSON error shape.

mod error;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::routing::{get, post};
use retail_model::artifact::Artifact;

pub use error::ApiError;
pub use routes::predict::{PredictionResponse, record_from_json, score};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Where the served model came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The default model compiled into the binary.
    Embedded,
    /// A local artifact directory or `.tar.gz`.
    Local(String),
}

impl ModelSource {
    /// Short name used in answers (`embedded`, `local`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Local(_) => "local",
        }
    }

    /// Where exactly (`embedded` or the path).
    pub fn location(&self) -> &str {
        match self {
            Self::Embedded => "embedded",
            Self::Local(path) => path,
        }
    }
}

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// The served model.
    pub artifact: Artifact,
    /// Where it came from.
    pub source: ModelSource,
    draining: AtomicBool,
}

impl AppState {
    /// State serving `artifact`.
    pub fn new(artifact: Artifact, source: ModelSource) -> Self {
        Self {
            artifact,
            source,
            draining: AtomicBool::new(false),
        }
    }

    /// Marks the server as shutting down: readiness turns 503.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// The API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(routes::page::page))
        .route("/health", get(routes::health::health))
        .route("/healthz", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .route("/predict", post(routes::predict::predict))
        .route("/model/info", get(routes::model::info))
        .route("/model-info", get(routes::model::info))
        .route("/model/metrics", get(routes::model::metrics))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves until SIGTERM or Ctrl-C, then stops accepting, turns unready and lets in-flight
/// requests finish.
pub async fn serve(addr: SocketAddr, state: Arc<AppState>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, model = %state.artifact.manifest.version, source = state.source.location(), "serving");
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            state.start_draining();
            tracing::info!("shutting down: draining in-flight requests");
        })
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
