//! `GET /`: the self-contained web page to try predictions (no CDN, no build step).

use axum::response::Html;

/// The page, compiled into the binary.
const PAGE: &str = include_str!("../../assets/index.html");

/// Serves the page.
pub async fn page() -> Html<&'static str> {
    Html(PAGE)
}
