//! Issue 18: the model card over HTTP, on a real loopback socket: `/model/card` and
//! `/models/{name}/card` answer an HTML page with the charts inline, a JSON 404 for a model
//! without a card, and need what `/model/info` needs when auth is on.

use std::net::SocketAddr;
use std::sync::Arc;

use retail_model::artifact::{Artifact, ModelKind};
use retail_server::auth::{Auth, AuthConfig, Scopes, hash_line};
use retail_server::{AppState, ModelConfig, ModelSource, Models, ServerConfig, router};
use serde_json::Value;

/// Serves `state` on an ephemeral loopback port.
async fn serve(state: Arc<AppState>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    addr
}

struct Answer {
    status: u16,
    content_type: String,
    csp: String,
    body: String,
}

async fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Answer {
    let mut request = reqwest::Client::new().get(format!("http://{addr}{path}"));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.expect("response");
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (content_type, csp) = (header("content-type"), header("content-security-policy"));
    Answer { status: response.status().as_u16(), content_type, csp, body: response.text().await.expect("body") }
}

/// The embedded classifier (default) and forecast, and `bare`: the classifier without its card.
fn models() -> Arc<AppState> {
    let config = |name: &str, source| ModelConfig { name: name.to_owned(), source, poll: None };
    let basket = ModelSource::Embedded(ModelKind::BasketClassifier);
    let forecast = ModelSource::Embedded(ModelKind::SalesForecast);
    let bare = ModelSource::Local("/bare".into());
    let configs = vec![
        config("retail-price-sensitivity", basket.clone()),
        config("retail-sales-forecast", forecast.clone()),
        config("bare", bare.clone()),
    ];
    let state = AppState::with_models(Models::new(configs, None).expect("models"), ServerConfig::default());
    let slots: Vec<_> = state.models().iter().cloned().collect();
    slots[0].serve_now(Artifact::embedded_default().expect("classifier"), basket);
    slots[1].serve_now(Artifact::embedded_forecast().expect("forecast"), forecast);
    let mut without = Artifact::embedded_default().expect("classifier");
    without.card = None;
    slots[2].serve_now(without, bare);
    Arc::new(state)
}

fn images(html: &str) -> usize {
    html.matches("<img src=\"data:image/svg+xml;base64,").count()
}

#[tokio::test]
async fn issue18_the_card_is_an_html_page_with_its_charts_inline() {
    let addr = serve(models()).await;
    let page = get(addr, "/model/card", None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    assert!(page.csp.contains("img-src data:") && page.csp.contains("default-src 'none'"), "{}", page.csp);
    assert!(page.body.starts_with("<!doctype html>") && page.body.contains("<h1>Model card: retail-price-sensitivity"));
    assert_eq!(images(&page.body), 3, "confusion matrix, calibration and importance inline");
    assert!(!page.body.contains("src=\"calibration.svg\""), "no chart needs another route");
    assert!(page.body.contains("<table>") && page.body.contains("19,406 baskets"), "tables, counts separated");
    assert!(page.body.contains("Feature importance"));
    let forecast = get(addr, "/models/retail-sales-forecast/card", None).await;
    assert_eq!(forecast.status, 200, "{}", forecast.body);
    assert!(forecast.content_type.starts_with("text/html"));
    assert!(forecast.body.contains("<h1>Model card: retail-sales-forecast"));
    assert_eq!(images(&forecast.body), 3, "predicted against actual, residuals and importance inline");
    let named = get(addr, "/models/retail-price-sensitivity/card", None).await;
    assert_eq!(named.body, page.body, "the default model's card under its name");
}

#[tokio::test]
async fn issue18_a_model_without_a_card_is_a_json_404() {
    let addr = serve(models()).await;
    for (path, code) in [("/models/bare/card", "card_not_found"), ("/models/nope/card", "model_not_found")] {
        let answer = get(addr, path, None).await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(answer.content_type, "application/json", "{path}");
        let body: Value = serde_json::from_str(&answer.body).expect("JSON");
        assert_eq!(body["code"], code, "{path}: {body}");
    }
}

const READER: &str = "rk_issue18_model_reader_key_0123456789ab";
const PREDICTOR: &str = "rk_issue18_predict_only_key_0123456789ab";

#[tokio::test]
async fn issue18_the_card_is_scoped_like_model_info() {
    let dir = tempfile::tempdir().expect("tmp");
    let scopes = |list: &str| Scopes::parse_list(list).expect("scopes");
    let lines = [
        hash_line("reader", READER, scopes("model:read"), None),
        hash_line("predictor", PREDICTOR, scopes("predict"), None),
    ];
    let path = dir.path().join("keys");
    std::fs::write(&path, lines.join("\n") + "\n").expect("key file");
    let auth = Auth::new(&AuthConfig { api_keys_file: Some(path), ..AuthConfig::default() }).expect("auth");
    let artifact = Artifact::embedded_default().expect("model");
    let source = ModelSource::Embedded(ModelKind::BasketClassifier);
    let addr = serve(Arc::new(AppState::new(artifact, source, ServerConfig::default()).with_auth(auth))).await;
    for key in [None, Some(PREDICTOR), Some(READER)] {
        let info = get(addr, "/model/info", key).await.status;
        for path in ["/model/card", "/models/retail-price-sensitivity/card"] {
            assert_eq!(get(addr, path, key).await.status, info, "{path} with {key:?}");
        }
        assert_eq!(
            info,
            [401, 403, 200][[None, Some(PREDICTOR), Some(READER)].iter().position(|k| *k == key).expect("key")]
        );
    }
}
