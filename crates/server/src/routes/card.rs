//! `GET /model/card` and `GET /models/{name}/card`: the served model's card (`card.md` of its
//! artifact) as an HTML page. The charts the card references are embedded as `data:` images,
//! so the page needs no other route; raw HTML in the Markdown is shown as text, never
//! rendered (model and feature names come from user data), and only `http(s)`, `mailto` and
//! relative links stay links.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use retail_model::artifact::ModelCard;

use crate::{ApiError, AppState, ModelSlot};

/// What the page may load: its own inline style and `data:` images, nothing else (no scripts,
/// no requests, no framing).
pub const CARD_CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;\
line-height:1.5;color:#222}table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;\
padding:.25rem .6rem;text-align:left}td{font-variant-numeric:tabular-nums}img{max-width:100%;height:auto;\
display:block;margin:1rem 0}code{background:#f3f3f3;padding:0 .2rem}";

/// The default model's card (its artifact's `card.md` with the charts inline) as an HTML page.
#[utoipa::path(get, path = "/model/card", tag = "model", operation_id = "model_card", responses(
    (status = 200, description = "the model card as an HTML page; its charts are inline `data:` images", content_type = "text/html", body = String),
))]
pub async fn card(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    card_of(state.models().default_slot())
}

/// The card of the model `name` (as `/model/card` gives for the default one).
#[utoipa::path(get, path = "/models/{name}/card", tag = "model", operation_id = "named_model_card",
    params(("name" = String, Path, description = "a configured model (GET /models)")),
    responses(
        (status = 200, description = "the model card as an HTML page; its charts are inline `data:` images", content_type = "text/html", body = String),
    ))]
pub async fn model_card(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response, ApiError> {
    card_of(state.models().named(&name)?)
}

fn card_of(slot: &ModelSlot) -> Result<Response, ApiError> {
    let model = slot.serving()?;
    let Some(card) = &model.artifact.card else {
        return Err(ApiError::NoCard(slot.name().to_owned()));
    };
    let title = format!("Model card: {} {}", slot.name(), model.artifact.manifest.version);
    let mut response = html_page(&title, card).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CONTENT_SECURITY_POLICY, CARD_CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

/// The whole page: `title` (escaped) and the card's Markdown rendered by [`render`].
pub fn html_page(title: &str, card: &ModelCard) -> String {
    let mut page =
        String::with_capacity(card.markdown.len() * 2 + card.charts.values().map(String::len).sum::<usize>() * 4 / 3);
    page.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    pulldown_cmark::html::push_html(&mut page, std::iter::once(Event::Text(title.into())));
    page.push_str("</title><style>");
    page.push_str(STYLE);
    page.push_str("</style></head><body><main>\n");
    page.push_str(&render(card));
    page.push_str("</main></body></html>\n");
    page
}

/// The card's Markdown (CommonMark with tables) as HTML: raw HTML becomes text, an image of one
/// of the card's charts becomes a `data:` image, any other image its alt text, and a link
/// other than `http(s)`, `mailto` or relative its text.
pub fn render(card: &ModelCard) -> String {
    let mut dropped = Vec::new();
    let events = Parser::new_ext(&card.markdown, Options::ENABLE_TABLES).filter_map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => match card.charts.get(dest_url.as_ref()) {
            Some(svg) => {
                let data =
                    format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg));
                dropped.push(false);
                Some(Event::Start(Tag::Image { link_type, dest_url: CowStr::from(data), title, id }))
            }
            None => {
                dropped.push(true);
                None
            }
        },
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            let keep = safe_link(&dest_url);
            dropped.push(!keep);
            keep.then_some(Event::Start(Tag::Link { link_type, dest_url, title, id }))
        }
        Event::End(end @ (TagEnd::Image | TagEnd::Link)) => {
            (!dropped.pop().unwrap_or(false)).then_some(Event::End(end))
        }
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

/// `http(s)`, `mailto`, a fragment or a relative path without a scheme.
fn safe_link(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    let scheme = lower.split_once(':').map(|(s, _)| s).filter(|s| !s.contains(['/', '?', '#']));
    matches!(scheme, None | Some("http" | "https" | "mailto"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(markdown: &str) -> ModelCard {
        let charts = [("chart.svg".to_owned(), "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".to_owned())].into();
        ModelCard { markdown: markdown.to_owned(), charts }
    }

    #[test]
    fn issue18_charts_are_inline_and_tables_render() {
        let html = render(&card("# T\n\n| a | b |\n|---|---|\n| 1,234 | x |\n\n![Chart](chart.svg)\n"));
        assert!(html.contains("<table>") && html.contains("<td>1,234</td>"), "{html}");
        assert!(
            html.contains("<img src=\"data:image/svg+xml;base64,PHN2Zy") && html.contains("alt=\"Chart\""),
            "{html}"
        );
    }

    #[test]
    fn issue18_raw_html_scripts_and_foreign_images_are_neutralised() {
        let html = render(&card(
            "# `<b>` <script>alert(1)</script>\n\n<div onclick=\"x()\">block</div>\n\n\
             ![remote](https://example.com/x.png) [bad](javascript:alert(1)) [ok](https://example.com) \
             [rel](#inputs) ![`<i>`](data:image/svg+xml,evil)\n",
        ));
        for bad in ["<script", "<div", "<b>", "<i>", "javascript:", "example.com/x.png", "data:image/svg+xml,evil"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("&lt;script&gt;") && html.contains("&lt;div onclick"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.com\">ok</a>") && html.contains("<a href=\"#inputs\">rel</a>")
        );
        assert!(html.contains("remote") && html.contains("bad"), "texts kept: {html}");
        let page = html_page("Model card: <x>", &card("text"));
        assert!(page.contains("<title>Model card: &lt;x&gt;</title>"), "{page}");
    }
}
