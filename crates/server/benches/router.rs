//! What the edge and the `/predict` handler cost per request, without sockets: the whole router
//! (every layer of `edge::stack`, admission, scoring, the answer) against a bare axum route that
//! parses the same body into a typed record and answers a constant (the HTTP floor's handler,
//! `scripts/bench/floor`). One runtime thread, one request at a time, so the difference is the
//! CPU time our layers and the model add to each request. `cargo bench -p retail-server`.
//! A third case turns auth on (HS256 with `JWT_SECRET_KEY`) and sends a bearer token: the cost
//! of checking it with its key cached. A fourth serves the same model without its drift
//! reference (as an artifact from before drift monitoring): no drift windows, no out-of-range or
//! rule checks, so the difference from the second is what drift monitoring costs a request.

#![allow(missing_docs)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use retail_model::artifact::{Artifact, ModelKind};
use retail_server::auth::{Auth, AuthConfig, Scopes};
use retail_server::{AppState, ModelSource, ServerConfig, router};
use tower::ServiceExt;

const SEED: &str = r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#;

fn request(bearer: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/predict").header(header::CONTENT_TYPE, "application/json");
    if let Some(bearer) = bearer {
        request = request.header(header::AUTHORIZATION, bearer);
    }
    request.body(Body::from(SEED)).expect("request")
}

async fn exchange(app: axum::Router, bearer: Option<&str>) {
    let response = app.oneshot(request(bearer)).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    std::hint::black_box(response.into_body().collect().await.expect("body"));
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let artifact = Artifact::embedded_default().expect("embedded model");
    let state =
        Arc::new(AppState::new(artifact, ModelSource::Embedded(ModelKind::BasketClassifier), ServerConfig::default()));
    let app = router(state);
    let secret = "bench-secret-0123456789abcdef0123456789";
    let auth = Auth::new(&AuthConfig {
        jwt_secret: Some(secret.to_owned()),
        default_scopes: Scopes::parse_list("predict").expect("scopes"),
        ..AuthConfig::default()
    })
    .expect("auth");
    let artifact = Artifact::embedded_default().expect("embedded model");
    let guarded = router(Arc::new(
        AppState::new(artifact, ModelSource::Embedded(ModelKind::BasketClassifier), ServerConfig::default())
            .with_auth(auth),
    ));
    let claims = serde_json::json!({"sub": "bench", "exp": 4_102_444_800u64, "scope": "predict"});
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).expect("key");
    let token = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("token");
    let bearer = format!("Bearer {token}");
    let mut unmonitored = Artifact::embedded_default().expect("embedded model");
    unmonitored.reference = None;
    let unmonitored = router(Arc::new(AppState::new(
        unmonitored,
        ModelSource::Embedded(ModelKind::BasketClassifier),
        ServerConfig::default(),
    )));
    let bare = retail_bench_floor::app();
    let mut group = c.benchmark_group("POST /predict, in process");
    group.bench_function("floor handler", |b| b.to_async(&runtime).iter(|| exchange(bare.clone(), None)));
    group.bench_function("retail-api router", |b| b.to_async(&runtime).iter(|| exchange(app.clone(), None)));
    group.bench_function("retail-api router, HS256 bearer token", |b| {
        b.to_async(&runtime).iter(|| exchange(guarded.clone(), Some(&bearer)))
    });
    group.bench_function("retail-api router, no drift reference", |b| {
        b.to_async(&runtime).iter(|| exchange(unmonitored.clone(), None))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
