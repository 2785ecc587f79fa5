//! gen-data --kind sales → train (detected from the header) → evaluate, through the binary.

use std::fs;
use std::path::Path;

use crate::{bin, run_fail, run_json};

/// Writes generated sales (and their truth) for `days` days from `start`.
fn sales(dir: &Path, name: &str, start: &str, days: &str, seed: &str) {
    run_json(
        bin()
            .args(["gen-data", "--kind", "sales", "--stores", "2", "--products", "8", "--days", days])
            .args(["--start", start, "--seed", seed, "--out"])
            .arg(dir.join(format!("{name}.csv")))
            .arg("--truth")
            .arg(dir.join(format!("{name}.truth.csv"))),
    );
}

#[test]
fn forecast_trains_from_sales_data_and_evaluates_against_the_bayes_ceiling() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    sales(tmp.path(), "d", "2023-06-01", "200", "1");
    // The next four weeks, another seed: a fair held-out period.
    sales(tmp.path(), "h", "2023-12-18", "28", "2");
    let trained =
        run_json(bin().args(["train", "--max-rounds", "40", "--data"]).arg(p("d.csv")).arg("--out").arg(p("m")));
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(p("m/manifest.json")).expect("manifest")).expect("json");
    assert_eq!(
        (manifest["kind"].as_str(), manifest["name"].as_str()),
        (Some("sales_forecast"), Some("retail-sales-forecast"))
    );
    assert_eq!(
        manifest["classes"],
        serde_json::json!([{"code": "units", "label": "Units sold per store, product and day"}])
    );
    assert_eq!(
        manifest["training"]["rows"]["dates"]["test"],
        serde_json::json!({"first": "2023-11-20", "last": "2023-12-17"})
    );
    assert_eq!(manifest["training"]["validation_metric"], "poisson_deviance");
    assert_eq!(manifest["provenance"]["rows"], 2 * 8 * 200);
    assert!(manifest.get("input_schema").is_none() && manifest["provenance"].get("baskets").is_none());
    for file in ["model.json", "forecast.json", "card.md", "predicted_vs_actual.svg", "residuals.svg"] {
        assert!(manifest["files"][file].is_object(), "{file} listed");
        assert!(p("m").join(file).is_file(), "{file}");
    }
    assert_eq!(trained["version"], manifest["version"]);
    for key in ["poisson_deviance", "rmse", "mae", "wape", "bias"] {
        assert!(trained["test_metrics"][key].is_f64(), "{key}: {trained}");
    }
    let card = fs::read_to_string(p("m/card.md")).expect("card");
    assert!(card.contains("held-out test split") && card.contains("2023-11-20 to 2023-12-17"), "{card}");

    let eval = run_json(
        bin()
            .args(["evaluate", "--model"])
            .arg(p("m"))
            .args(["--data"])
            .arg(p("h.csv"))
            .arg("--truth")
            .arg(p("h.truth.csv"))
            .arg("--report")
            .arg(p("report")),
    );
    assert_eq!(eval["data"]["rows"], 2 * 8 * 28);
    assert_eq!(
        (eval["data"]["first_date"].as_str(), eval["data"]["last_date"].as_str()),
        (Some("2023-12-18"), Some("2024-01-14"))
    );
    for key in ["poisson_deviance", "rmse", "mae", "wape", "bias"] {
        assert!(eval["metrics"][key].is_f64() && eval["bayes"][key].is_f64(), "{key}: {eval}");
    }
    let excess = eval["gap_to_bayes"]["poisson_deviance_excess"].as_f64().expect("gap");
    assert!(excess > -0.05 && excess < 0.5, "deviance {excess:+.3} relative to Bayes on a tiny world");
    assert!(eval["gap_to_bayes"]["wape_points"].is_f64());
    assert_eq!(eval["diagnostics"]["by_weekday"].as_array().map(Vec::len), Some(7));
    assert_eq!(eval["diagnostics"]["by_promotion"][1]["group"], "promotion");
    assert_eq!(eval["unseen"], serde_json::json!({}));
    let card = fs::read_to_string(p("report/card.md")).expect("card");
    assert!(card.contains("Bayes-optimal (true means)") && card.contains("predicted_vs_actual.svg"), "{card}");
    for file in ["predicted_vs_actual.svg", "residuals.svg", "metrics.json"] {
        assert!(p("report").join(file).is_file(), "{file}");
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&fs::read(p("report/metrics.json")).expect("metrics")).expect("json");
    assert_eq!(metrics["metrics"], eval["metrics"]);

    // Another world's stores and products are unseen: scored with the defaults and counted.
    run_json(
        bin()
            .args(["gen-data", "--kind", "sales", "--stores", "3", "--products", "9", "--days", "7"])
            .args(["--start", "2024-01-01", "--out"])
            .arg(p("wider.csv")),
    );
    let eval = run_json(bin().args(["evaluate", "--model"]).arg(p("m")).args(["--data"]).arg(p("wider.csv")));
    assert_eq!(eval["unseen"]["store_id"], 9 * 7);
    assert_eq!(eval["unseen"]["product_id"], 3 * 7);
}

#[test]
fn train_picks_the_kind_from_the_header_and_refuses_the_other_kinds_flags() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    sales(tmp.path(), "s", "2023-06-01", "120", "1");
    run_json(bin().args(["gen-data", "--baskets", "300", "--seed", "1", "--out"]).arg(p("b.csv")));
    let fails = |args: &[&str], data: &str| {
        let out = run_fail(bin().arg("train").args(args).arg("--data").arg(p(data)).arg("--out").arg(p("x")));
        assert!(!p("x").exists());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fails(&["--validation-share", "0.2"], "s.csv");
    assert!(e.contains("--validation-share applies to basket data"), "{e}");
    let e = fails(&["--objective", "poisson"], "b.csv");
    assert!(e.contains("--objective applies to sales data"), "{e}");
    let e = fails(&["--test-days", "7"], "b.csv");
    assert!(e.contains("--test-days applies to sales data"), "{e}");
    let e = fails(&["--kind", "baskets"], "s.csv");
    assert!(e.contains("missing column"), "{e}");
    let e = fails(&["--kind", "sales"], "b.csv");
    assert!(e.contains("missing column(s) store_id"), "{e}");
    let e = fails(&["--validation-days", "100", "--test-days", "20"], "s.csv");
    assert!(e.contains("none for training"), "{e}");

    // Squared error trains a forecast with the identity link, which loads and evaluates.
    let trained = run_json(
        bin()
            .args(["train", "--objective", "squared_error", "--max-rounds", "20", "--test-days", "14", "--data"])
            .arg(p("s.csv"))
            .arg("--out")
            .arg(p("sq")),
    );
    assert_eq!(trained["training"]["validation_metric"], "mean_squared_error");
    assert_eq!(trained["training"]["params"]["objective"]["name"], "squared_error");
    assert_eq!(trained["training"]["rows"]["test"], 2 * 8 * 14);
    let eval = run_json(bin().args(["evaluate", "--model"]).arg(p("sq")).arg("--data").arg(p("s.csv")));
    assert!(eval["metrics"]["rmse"].is_f64());

    // A forecast cannot evaluate baskets, nor a classifier sales rows.
    let out = run_fail(bin().args(["evaluate", "--model"]).arg(p("sq")).arg("--data").arg(p("b.csv")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing column(s) store_id"));
    let basket_model = crate::root().join("models/default");
    let out = run_fail(bin().args(["evaluate", "--model"]).arg(basket_model).arg("--data").arg(p("s.csv")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing column"));
}
