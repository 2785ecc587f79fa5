//! The page at `GET /` in a real browser: `tests/web/page.test.mjs` drives headless chromium
//! against a running `retail-api serve` and saves a screenshot to `test-artifacts/web-page.png`
//! (`web-page-auth.png` for the run with auth on). With no configuration the server serves both
//! embedded models, the basket classifier (default) and the sales forecast, so the test also
//! checks the page's model picker and forecast form (`web-page-forecast.png`).

use std::process::Command;

use crate::{Server, bin, root};

#[test]
fn the_page_predicts_in_a_browser() {
    browser_test(&Server::start(), "web-page.png", None);
}

/// Issue 13: with auth on, the page's token field and Swagger UI's Authorize button both lead
/// to a 200 from `/predict` (`TOKEN` switches page.test.mjs to those checks).
#[test]
fn issue13_the_page_and_swagger_ui_send_a_token() {
    const SECRET: &str = "web-test-only-secret-0123456789abcdef";
    let server = Server::start_with_env(&[], &[("JWT_SECRET_KEY", SECRET)]);
    let out = bin()
        .args(["token", "--sub", "browser", "--scopes", "predict model:read", "--ttl", "10m"])
        .env("JWT_SECRET_KEY", SECRET)
        .output()
        .expect("retail-api token");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).expect("utf8").trim().to_owned();
    browser_test(&server, "web-page-auth.png", Some(&token));
}

fn browser_test(server: &Server, screenshot: &str, token: Option<&str>) {
    let web = root().join("tests/web");
    // Missing tools fail the test, never skip it: a skip would pass having checked nothing.
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "tests/web/node_modules is missing: run `npm ci --prefix tests/web` (and `apt-get install -y chromium`)"
    );
    let url = format!("http://{}/", server.addr());
    let screenshot = root().join("test-artifacts").join(screenshot);
    // A screenshot left by an earlier run must not pass for this run's.
    let _ = std::fs::remove_file(&screenshot);
    let mut node = Command::new("node");
    node.arg("page.test.mjs").arg(&url).arg(&screenshot).current_dir(&web).env_remove("TOKEN");
    if let Some(token) = token {
        node.env("TOKEN", token);
    }
    let out = node.output().expect("run node (install Node.js 20 or later)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser test failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Shown with --nocapture: what the browser checked.
    eprint!("{stdout}");
    assert!(screenshot.is_file(), "no screenshot at {}", screenshot.display());
}
