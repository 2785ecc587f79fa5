//! The HTTP edge: connections ([`conn`]), the middleware stack every request passes
//! ([`stack`], read top to bottom), then per route group: authentication ([`guarded`]) and the
//! admission of scoring requests ([`admission`]).

pub mod access_log;
pub mod admission;
pub mod conn;
pub mod hook;
pub mod request_id;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hook::{Hook, HookLayer};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{self, Auth, Scope};
use crate::{ApiError, AppState, error, metrics};

/// Wraps the routes in the edge's middleware, outermost first. Below it, per route group
/// (`crate::api`): [`guarded`] (credential and scope, 401/403), then, on scoring routes,
/// [`admission`] (body, permit, timeout), then the handler.
pub fn stack(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    let x_request_id = HeaderName::from_static(request_id::HEADER);
    routes
        .layer(
            ServiceBuilder::new()
                // Credentials never show in logs or debug output.
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::PROXY_AUTHORIZATION,
                    header::COOKIE,
                ]))
                // A caller's x-request-id if short and plain, else a fresh one; echoed back.
                .map_request(request_id::drop_unsafe_id)
                .layer(SetRequestIdLayer::new(x_request_id.clone(), request_id::Fresh))
                .layer(PropagateRequestIdLayer::new(x_request_id))
                // Metrics by route template, and the access log, see every answer below.
                .layer(HookLayer(metrics::requests::Track))
                .layer(HookLayer(access_log::Log(state.clone())))
                // Error bodies are written once, with the request id.
                .layer(HookLayer(error::ErrorBodies))
                // While draining, every answer closes its connection.
                .layer(HookLayer(Drain(state.clone())))
                // Browsers on the allowed origins may call the API (preflights answered here).
                .option_layer(cors(&state.config.cors_allowed_origins))
                // A panic in a handler is a 500 in the API's error shape, not a dropped connection.
                .map_response(IntoResponse::into_response)
                .layer(CatchPanicLayer::custom(|_| ApiError::Internal("handler panicked".to_owned()).into_response()))
                .layer(axum::extract::DefaultBodyLimit::max(state.config.max_body_bytes)),
        )
        .with_state(state)
}

/// CORS for `origins` (`*`: any origin), limited to the methods and headers the API uses; a
/// preflight is cached for ten minutes. `None` (no CORS headers) when no origin is allowed.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::HEAD, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(request_id::HEADER),
                HeaderName::from_static("x-api-key"),
            ])
            .expose_headers([HeaderName::from_static(request_id::HEADER), header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600))
    })
}

/// A protected route group: [`auth::RequireScope`] as its route layer, outside admission (added
/// after it), so a request without a valid credential never has its body read or takes a
/// permit; and the scope in its OpenAPI operations. `auth` is absent when only the document is
/// wanted; an `auth` that does not guard `scope` (auth off, or `METRICS_PUBLIC`) adds no layer.
pub fn guarded(
    mut routes: OpenApiRouter<Arc<AppState>>,
    auth: Option<&Arc<Auth>>,
    scope: Scope,
) -> OpenApiRouter<Arc<AppState>> {
    auth::openapi::require(routes.get_openapi_mut(), scope);
    match auth {
        Some(auth) if auth.guards(scope) => routes.route_layer(auth::RequireScope::new(auth.clone(), scope)),
        _ => routes,
    }
}

/// Security headers for the HTML page and the API reference.
pub fn page_headers<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(header(header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
}

/// `Connection: close` on every answer once the server is draining, so keep-alive clients
/// reconnect (to another replica) instead of reusing a connection that is about to close.
#[derive(Clone)]
struct Drain(Arc<AppState>);

impl Hook for Drain {
    type Seen = ();

    fn before(&self, _: &mut Request) {}

    fn after(&self, (): (), response: &mut Response) {
        if self.0.is_draining() {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
}
