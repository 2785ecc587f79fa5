//! What every chart of the cards shares: the SVG header (size, font, white background, a
//! centred title) and the footer, so a chart writes only its own marks.

use std::fmt::Write as _;

/// Escapes text for SVG (and HTML) content: model and feature names come from user data.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Starts a `w` × `h` chart in `font_size`-pixel sans-serif with a white background and
/// `title` (escaped) centred at the top.
pub fn open(w: f64, h: f64, font_size: u32, title: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="{font_size}">"#
    );
    let _ = write!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    s
}

/// Ends a chart begun with [`open`].
pub fn close(mut s: String) -> String {
    s.push_str("</svg>");
    s
}
