//! `/version` (build information) and `/metrics` (Prometheus exposition).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;
use crate::schema::VersionResponse;

/// Build information, from the build environment (`GIT_COMMIT`, `GIT_BRANCH`, `BUILD_DATE`).
pub fn build() -> VersionResponse {
    VersionResponse {
        name: "retail-api",
        version: env!("CARGO_PKG_VERSION"),
        git_commit: option_env!("GIT_COMMIT").unwrap_or("unknown"),
        git_branch: option_env!("GIT_BRANCH").unwrap_or("unknown"),
        build_date: option_env!("BUILD_DATE").unwrap_or("unknown"),
        rustc: retail_model::rustc_version(),
    }
}

/// Build information of the running binary.
#[utoipa::path(get, path = "/version", tag = "operations", responses((status = 200, description = "build information", body = VersionResponse)))]
pub async fn version() -> Json<VersionResponse> {
    Json(build())
}

/// Prometheus metrics in the text exposition format (the drift gauges computed as of now).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn prometheus(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    crate::drift::publish(state.models(), &state.config.drift);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::render())
}
