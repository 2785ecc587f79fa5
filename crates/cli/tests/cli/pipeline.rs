//! gen-data → train → evaluate through the binary, and its answers to bad input.

use std::fs;

use crate::{bin, run_fail, run_json};

#[test]
fn gen_data_is_deterministic_per_seed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let generate = |name: &str, seed: &str| {
        let path = tmp.path().join(name);
        run_json(
            bin()
                .args(["gen-data", "--baskets", "500", "--seed", seed, "--out"])
                .arg(&path)
                .arg("--truth")
                .arg(tmp.path().join(format!("{name}.truth"))),
        );
        fs::read(path).expect("read")
    };
    let a = generate("a.csv", "1");
    assert_eq!(a, generate("b.csv", "1"));
    assert_ne!(a, generate("c.csv", "2"));
    let text = String::from_utf8(a).expect("utf8");
    assert!(text.starts_with("SHOP_WEEK,SHOP_DATE,SHOP_WEEKDAY,SHOP_HOUR,QUANTITY,SPEND,PROD_CODE,PROD_CODE_10,PROD_CODE_20,PROD_CODE_30,PROD_CODE_40,CUST_CODE,CUST_PRICE_SENSITIVITY,CUST_LIFESTAGE,BASKET_ID,BASKET_SIZE,BASKET_PRICE_SENSITIVITY,BASKET_TYPE,BASKET_DOMINANT_MISSION,STORE_CODE,STORE_FORMAT,STORE_REGION\n"));
    // No temporary files are left beside the output.
    assert!(
        fs::read_dir(tmp.path()).expect("dir").all(|e| !e.expect("e").file_name().to_string_lossy().starts_with('.'))
    );
}

#[test]
fn gen_data_sales_is_deterministic_and_covers_the_seed_example() {
    let tmp = tempfile::tempdir().expect("tmp");
    let generate = |name: &str, seed: &str| {
        let (path, truth) = (tmp.path().join(name), tmp.path().join(format!("{name}.truth")));
        let summary = run_json(
            bin()
                .args(["gen-data", "--kind", "sales", "--stores", "2", "--products", "5", "--days", "10"])
                .args(["--start", "2023-12-28", "--seed", seed, "--out"])
                .arg(&path)
                .arg("--truth")
                .arg(&truth),
        );
        (fs::read_to_string(path).expect("read"), fs::read_to_string(truth).expect("read"), summary)
    };
    let (data, truth, summary) = generate("a.csv", "1");
    assert_eq!(summary["rows"], 100);
    assert_eq!(
        (summary["first_date"].as_str(), summary["last_date"].as_str()),
        (Some("2023-12-28"), Some("2024-01-06"))
    );
    assert_eq!(data, generate("b.csv", "1").0);
    assert_ne!(data, generate("c.csv", "2").0);
    assert!(data.starts_with("store_id,product_id,date,price,promotion,units\n"), "{data}");
    assert!(truth.starts_with("store_id,product_id,date,expected_units\n"), "{truth}");
    assert_eq!(data.lines().count(), truth.lines().count());
    assert!(data.lines().any(|l| l.starts_with("1,123,2024-01-01,")), "the seed's store, product and date");
    assert!(
        fs::read_dir(tmp.path()).expect("dir").all(|e| !e.expect("e").file_name().to_string_lossy().starts_with('.'))
    );

    let fails = |args: &[&str]| {
        let out = run_fail(bin().arg("gen-data").args(args).arg("--out").arg(tmp.path().join("x.csv")));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = fails(&["--stores", "3"]);
    assert!(e.contains("--stores applies to --kind sales"), "{e}");
    let e = fails(&["--kind", "sales", "--start", "2023-02-30"]);
    assert!(e.contains("--start") && e.contains("not a calendar date"), "{e}");
    let e = fails(&["--kind", "sales", "--stores", "0"]);
    assert!(e.contains("stores must be within"), "{e}");
    assert!(!tmp.path().join("x.csv").exists());
}

#[test]
fn train_then_evaluate_against_the_bayes_ceiling() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    run_json(bin().args(["gen-data", "--baskets", "20000", "--seed", "3", "--out"]).arg(p("d.csv")));
    run_json(
        bin()
            .args(["gen-data", "--baskets", "10000", "--seed", "4", "--out"])
            .arg(p("h.csv"))
            .arg("--truth")
            .arg(p("ht.csv")),
    );
    let trained = run_json(bin().args(["train", "--data"]).arg(p("d.csv")).arg("--out").arg(p("m")));
    assert!(trained["test_metrics"]["accuracy"].as_f64().expect("accuracy") > 0.6);
    for file in ["manifest.json", "model.json", "card.md", "confusion_matrix.svg", "calibration.svg"] {
        assert!(p("m").join(file).is_file(), "{file}");
    }
    let eval = run_json(
        bin()
            .args(["evaluate", "--model"])
            .arg(p("m"))
            .arg("--data")
            .arg(p("h.csv"))
            .arg("--truth")
            .arg(p("ht.csv"))
            .arg("--report")
            .arg(p("report")),
    );
    let (model, bayes) = (&eval["metrics"], &eval["bayes"]);
    for key in ["accuracy", "macro_f1", "log_loss", "ece"] {
        assert!(model[key].is_f64() && bayes[key].is_f64(), "{key}");
    }
    assert_eq!(model["confusion"].as_array().expect("confusion").len(), 3);
    assert_eq!(model["per_class"].as_array().expect("per class").len(), 3);
    // 20k training baskets already come within a few points of the ceiling.
    let gap = eval["gap_to_bayes"]["accuracy"].as_f64().expect("gap");
    assert!(gap > -3.0 && gap < 1.0, "gap {gap}");
    assert_eq!(eval["data"]["baskets"], 10_000);
    let card = fs::read_to_string(p("report/card.md")).expect("card");
    assert!(card.contains("Bayes-optimal") && card.contains("confusion_matrix.svg"));
}

#[test]
fn malformed_data_is_refused_naming_line_and_column_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    run_json(bin().args(["gen-data", "--baskets", "300", "--seed", "1", "--out"]).arg(p("d.csv")));
    let good = fs::read_to_string(p("d.csv")).expect("read");
    // Line `n` (1-based, header is line 1) with field `column` replaced.
    let with_field = |n: usize, column: usize, value: &str| {
        let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
        let mut fields: Vec<&str> = lines[n - 1].split(',').collect();
        fields[column] = value;
        lines[n - 1] = fields.join(",");
        lines.join("\n")
    };
    let cases = [
        ("letters.csv", with_field(6, 5, "12.5O"), "line 6, column SPEND"),
        ("negative.csv", with_field(9, 5, "-4.00"), "line 9, column SPEND"),
        ("quantity.csv", with_field(4, 4, "0"), "line 4, column QUANTITY"),
        ("fields.csv", with_field(7, 5, "1,2"), "line 7"),
        ("label.csv", with_field(3, 16, "HIGH"), "line 3, column BASKET_PRICE_SENSITIVITY"),
        ("empty.csv", String::new(), "missing column"),
        ("header.csv", "a,b,c\n1,2,3\n".to_owned(), "missing column"),
        ("no-rows.csv", good.lines().next().expect("header").to_owned(), "no data lines"),
    ];
    for (name, content, expected) in cases {
        fs::write(p(name), content).expect("write");
        let out = run_fail(bin().args(["train", "--data"]).arg(p(name)).arg("--out").arg(p("m")));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!p("m").exists(), "nothing half-written for {name}");
    }
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .expect("dir")
        .map(|e| e.expect("e").file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn existing_output_needs_force_and_a_broken_model_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    run_json(bin().args(["gen-data", "--baskets", "3000", "--seed", "1", "--out"]).arg(p("d.csv")));
    fs::create_dir(p("m")).expect("mkdir");
    // An empty directory may be trained into (issue 18); one with something in it needs --force.
    fs::write(p("m/notes.txt"), "mine").expect("write");
    let out = run_fail(bin().args(["train", "--data"]).arg(p("d.csv")).arg("--out").arg(p("m")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    run_json(bin().args(["train", "--force", "--data"]).arg(p("d.csv")).arg("--out").arg(p("m")));
    fs::write(p("m/model.json"), b"{}").expect("write");
    let out = run_fail(bin().args(["evaluate", "--model"]).arg(p("m")).arg("--data").arg(p("d.csv")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("model.json"), "{stderr}");
}

#[test]
fn predict_scores_csv_baskets_and_jsonl_requests() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    run_json(bin().args(["gen-data", "--baskets", "200", "--seed", "1", "--out"]).arg(p("d.csv")));
    let out = bin().args(["predict", "--input"]).arg(p("d.csv")).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let csv = String::from_utf8(out.stdout).expect("utf8");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("source,line,id,prediction,P_LA,P_MM,P_UM,warnings,error"));
    assert_eq!(lines.count(), 200);

    let requests = [
        r#"{"BASKET_SIZE":"M","BASKET_TYPE":"MIXED","STORE_REGION":"LONDON","STORE_FORMAT":"LS","SPEND":125.50,"QUANTITY":3,"PROD_CODE_20":"FOOD","PROD_CODE_30":"FRESH"}"#,
        r#"{"basket_items": {"P1": {"quantity": 2, "price": 10.99, "category": "grocery"}}, "STORE_REGION": "LONDON", "STORE_FORMAT": "LS"}"#,
        r#"{"SPEND": -1}"#,
        "not json",
    ];
    fs::write(p("r.jsonl"), requests.join("\n")).expect("write");
    let out = run_fail(bin().args(["predict", "--input"]).arg(p("r.jsonl")).arg("--out").arg(p("r.out")));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 input row(s)"));
    let answers: Vec<serde_json::Value> =
        fs::read_to_string(p("r.out")).expect("out").lines().map(|l| serde_json::from_str(l).expect("json")).collect();
    assert_eq!(answers.len(), 4, "one answer per input line, errors included");
    assert!(answers[0]["prediction"].is_string() && answers[1]["prediction"].is_string());
    assert_eq!(answers[2]["line"], 3);
    assert_eq!(answers[2]["code"], "invalid_input");
    assert_eq!(answers[3]["code"], "malformed_json");
}
