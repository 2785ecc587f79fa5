//! The page at `GET /` in a real browser: `tests/web/page.test.mjs` drives headless chromium
//! against a running `retail-api serve` and saves a screenshot to `test-artifacts/web-page.png`.

use std::process::Command;

use crate::{Server, root};

#[test]
fn the_page_predicts_in_a_browser() {
    let web = root().join("tests/web");
    // Missing tools fail the test, never skip it: a skip would pass having checked nothing.
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "tests/web/node_modules is missing: run `npm ci --prefix tests/web` (and `apt-get install -y chromium`)"
    );
    let server = Server::start();
    let url = format!("http://{}/", server.addr());
    let screenshot = root().join("test-artifacts/web-page.png");
    // A screenshot left by an earlier run must not pass for this run's.
    let _ = std::fs::remove_file(&screenshot);
    let out = Command::new("node")
        .arg("page.test.mjs")
        .arg(&url)
        .arg(&screenshot)
        .current_dir(&web)
        .output()
        .expect("run node (install Node.js 20 or later)");
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
