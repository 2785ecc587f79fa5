//! What the edge and the `/predict` handler cost per request, without sockets: the whole router
//! (every layer of `edge::stack`, admission, scoring, the answer) against a bare axum route that
//! parses the same body into a typed record and answers a constant (the HTTP floor's handler,
//! `scripts/bench/floor`). One runtime thread, one request at a time, so the difference is the
//! CPU time our layers and the model add to each request. `cargo bench -p retail-server`.

#![allow(missing_docs)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use retail_model::artifact::Artifact;
use retail_server::{AppState, ModelSource, ServerConfig, router};
use tower::ServiceExt;

const SEED: &str = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;

fn request() -> Request<Body> {
    Request::post("/predict").header(header::CONTENT_TYPE, "application/json").body(Body::from(SEED)).expect("request")
}

async fn exchange(app: axum::Router) {
    let response = app.oneshot(request()).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    std::hint::black_box(response.into_body().collect().await.expect("body"));
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let artifact = Artifact::embedded_default().expect("embedded model");
    let state = Arc::new(AppState::new(artifact, ModelSource::Embedded, ServerConfig::default()));
    let app = router(state);
    let bare = retail_bench_floor::app();
    let mut group = c.benchmark_group("POST /predict, in process");
    group.bench_function("floor handler", |b| b.to_async(&runtime).iter(|| exchange(bare.clone())));
    group.bench_function("retail-api router", |b| b.to_async(&runtime).iter(|| exchange(app.clone())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
