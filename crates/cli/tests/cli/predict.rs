//! `retail-api predict` (issue 18, batch scoring): every input format of every model kind,
//! answers naming their input line, errors naming line and field, output formats, and shards
//! over S3 (moto) that together score exactly what one unsharded run scores.

use std::fs;
use std::path::Path;
use std::process::Output;

use crate::s3::Moto;
use crate::{bin, root, run_fail};

const FLAT_HEADER: &str = "BASKET_SIZE,BASKET_TYPE,STORE_REGION,STORE_FORMAT,SPEND,QUANTITY,PROD_CODE_20,PROD_CODE_30";

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8")
}

fn predict(args: &[&str], input: &Path) -> String {
    ok(bin().arg("predict").args(args).arg("--input").arg(input).output().expect("run"))
}

/// The rows of a CSV output without their `source` column.
fn rows(csv: &str) -> Vec<String> {
    csv.lines().skip(1).map(|l| l.split_once(',').expect("source").1.to_owned()).collect()
}

/// A transaction file without one of its columns.
fn drop_column(csv: &str, name: &str) -> String {
    let index = csv.lines().next().expect("header").split(',').position(|c| c == name).expect("column");
    let drop = |line: &str| {
        line.split(',').enumerate().filter(|(i, _)| *i != index).map(|(_, c)| c).collect::<Vec<_>>().join(",")
    };
    csv.lines().map(drop).collect::<Vec<_>>().join("\n")
}

#[test]
fn predict_scores_unlabelled_transactions_flat_rows_and_json_lines_alike() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    ok(bin().args(["gen-data", "--baskets", "300", "--seed", "3", "--out"]).arg(p("d.csv")).output().expect("gen"));
    let labelled = predict(&[], &p("d.csv"));
    let data = fs::read_to_string(p("d.csv")).expect("read");
    fs::write(p("u.csv"), drop_column(&data, "BASKET_PRICE_SENSITIVITY")).expect("write");
    let unlabelled = predict(&[], &p("u.csv"));
    assert_eq!(rows(&unlabelled).len(), 300);
    assert_eq!(rows(&unlabelled), rows(&labelled), "the label plays no part in scoring");

    let flat = format!("{FLAT_HEADER}\nM,MIXED,LONDON,LS,125.50,3,FOOD,FRESH\n\nL,MIXED,LONDON,LS,abc,0,FOOD,FRESH\n");
    fs::write(p("f.csv"), flat).expect("write");
    let out = run_fail(bin().args(["predict", "--input"]).arg(p("f.csv")));
    let csv = String::from_utf8(out.stdout).expect("utf8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "source,line,id,prediction,P_LA,P_MM,P_UM,warnings,error");
    assert!(lines[1].contains(",2,,UM,0.0006"), "{}", lines[1]);
    assert!(
        lines[2].ends_with(",4,,,,,,,\"SPEND: must be a number, got a string; QUANTITY: must be >= 1, got 0\""),
        "{}",
        lines[2]
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 input row(s) could not be scored"));

    fs::write(p("r.jsonl"), format!("\n{}\n", crate::SEED)).expect("write");
    let json = predict(&["--output-format", "jsonl"], &p("r.jsonl"));
    let answer: serde_json::Value = serde_json::from_str(json.trim()).expect("json");
    assert_eq!((answer["line"].as_u64(), answer["prediction"].as_str()), (Some(2), Some("UM")));
    let from_flat = lines[1].split(',').nth(5).expect("P_MM").parse::<f64>().expect("number");
    assert_eq!(answer["probabilities"]["MM"].as_f64(), Some(from_flat), "JSON lines and CSV rows score alike");

    ok(bin().args(["predict", "--input"]).arg(p("u.csv")).arg("--out").arg(p("o.jsonl")).output().expect("run"));
    let first: serde_json::Value =
        serde_json::from_str(fs::read_to_string(p("o.jsonl")).expect("out").lines().next().expect("line"))
            .expect("json");
    assert!(first["id"].is_string() && first["line"] == 2, "{first}");

    fs::write(p("w.csv"), "SPEND,BASKET_SIZE\n1,M\n").expect("write");
    let out = run_fail(bin().args(["predict", "--input"]).arg(p("w.csv")));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("w.csv, line 1: the header must be the model's columns in this order"), "{e}");
}

#[test]
fn predict_scores_sales_and_tabular_rows_of_csv() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    let sales = "store_id,product_id,date,price,promotion\n1,123,2024-01-01,29.99,0\n1,123,2023-02-30,29.99,0\n";
    fs::write(p("s.csv"), sales).expect("write");
    let model = root().join("models/sales-forecast");
    let out = run_fail(bin().args(["predict", "--model"]).arg(&model).arg("--input").arg(p("s.csv")));
    let csv = String::from_utf8(out.stdout).expect("utf8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "source,line,id,prediction,warnings,error");
    let prediction = lines[1].split(',').nth(3).expect("prediction").parse::<f64>().expect("a number");
    assert!(prediction >= 0.0, "{}", lines[1]);
    assert!(lines[2].contains(",3,,,,\"date: is not a calendar date"), "the error names line and field: {}", lines[2]);
    explained_forecast_adds_up_to_its_log(&model, &p("s.csv"));

    let model = root().join("models/tabular");
    let columns: Vec<String> = (1..=20).map(|i| format!("f{i}")).collect();
    let values = vec!["1"; 20].join(",");
    fs::write(p("t.csv"), format!("{}\n{values}\n", columns.join(","))).expect("write");
    let csv = predict(&["--model", model.to_str().expect("utf8")], &p("t.csv"));
    assert!(csv.starts_with("source,line,id,prediction,P_0,P_1,warnings,error\n"), "{csv}");
    assert_eq!(rows(&csv).len(), 1);
}

/// `predict --explain` on a forecast: `BASE` and one `C_<field>` column per field, adding up to
/// the log of the prediction (the Poisson link); the invalid row's cells stay empty.
fn explained_forecast_adds_up_to_its_log(model: &Path, input: &Path) {
    let out = run_fail(bin().args(["predict", "--explain", "--model"]).arg(model).arg("--input").arg(input));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().expect("header").clone();
    let contributions: Vec<usize> = (0..header.len()).filter(|&i| header[i].starts_with("C_")).collect();
    assert!(contributions.len() >= 5, "one column per field: {header:?}");
    let base = header.iter().position(|h| h == "BASE").expect("BASE column");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    let number = |r: &csv::StringRecord, i: usize| r[i].parse::<f64>().expect("number");
    let margin = number(&records[0], base) + contributions.iter().map(|&i| number(&records[0], i)).sum::<f64>();
    let prediction = number(&records[0], 3);
    assert!((margin.exp() - prediction).abs() <= 1e-9 * prediction.max(1.0), "{margin} against {prediction}");
    let error = header.iter().position(|h| h == "error").expect("error column");
    assert!(records[1][base].is_empty() && records[1][error].contains("date"), "{:?}", records[1]);
}

#[test]
fn predict_shards_of_an_s3_prefix_together_score_what_one_run_scores() {
    let moto = Moto::start();
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, seed) in [11, 12, 13].into_iter().enumerate() {
        let file = tmp.path().join(format!("part-{i}.csv"));
        let made =
            bin().args(["gen-data", "--baskets", "150", "--seed", &seed.to_string(), "--out"]).arg(&file).output();
        ok(made.expect("gen"));
        moto.put("inputs", &format!("day/part-{i}.csv"), &file);
    }
    moto.create_bucket("scores");
    let run = |out: &str, shard: Option<&str>| {
        let mut cmd = bin();
        cmd.args(["predict", "--input", "s3://inputs/day/", "--out", out]).envs(moto.env());
        if let Some(shard) = shard {
            cmd.args(["--shard", shard]);
        }
        ok(cmd.output().expect("run"));
    };
    run("s3://scores/all/", None);
    run("s3://scores/sharded/", Some("0/2"));
    assert_eq!(moto.list("scores", "sharded/"), ["sharded/part-0.csv", "sharded/part-2.csv"], "shard 0 of 2");
    run("s3://scores/sharded/", Some("1/2"));
    let all = moto.list("scores", "all/");
    assert_eq!(all, ["all/part-0.csv", "all/part-1.csv", "all/part-2.csv"]);
    let mut scored = 0;
    for key in &all {
        let whole = moto.get("scores", key);
        assert_eq!(whole, moto.get("scores", &key.replacen("all/", "sharded/", 1)), "{key}");
        scored += String::from_utf8(whole).expect("utf8").lines().count() - 1;
    }
    assert_eq!(scored, 450);
    assert_eq!(moto.list("scores", "sharded/").len(), 3);
}

/// Inputs of many chunks are scored on every core and written in input order: 40,000 flat rows
/// (five chunks of 8,192, read ahead and scored together) and the same rows one by one agree.
#[test]
fn predict_keeps_input_order_across_chunks_scored_in_parallel() {
    let tmp = tempfile::tempdir().expect("tmp");
    let p = |name: &str| tmp.path().join(name);
    let regions = ["LONDON", "WALES", "EAST", "SCOTLAND"];
    let mut flat = String::from(FLAT_HEADER);
    for i in 0..40_000 {
        let spend = if i % 9_999 == 0 { "-1".to_owned() } else { format!("{:.2}", 1.0 + (i % 500) as f64 * 0.61) };
        let region = regions[i % regions.len()];
        flat.push_str(&format!("\nM,MIXED,{region},LS,{spend},{},FOOD,FRESH", 1 + i % 37));
    }
    fs::write(p("f.csv"), &flat).expect("write");
    let out = run_fail(bin().args(["predict", "--output-format", "jsonl", "--input"]).arg(p("f.csv")));
    let answers: Vec<serde_json::Value> = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("json"))
        .collect();
    assert_eq!(answers.len(), 40_000);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer["line"].as_u64(), Some(i as u64 + 2), "line order at record {i}");
        assert_eq!(answer["code"].is_string(), i % 9_999 == 0, "record {i}: {answer}");
    }
    // Spot checks against one-record runs.
    for i in [1, 8_191, 8_192, 24_577, 39_999] {
        let row = flat.lines().nth(i + 1).expect("row");
        fs::write(p("one.csv"), format!("{FLAT_HEADER}\n{row}\n")).expect("write");
        let one = predict(&["--output-format", "jsonl"], &p("one.csv"));
        let one: serde_json::Value = serde_json::from_str(one.trim()).expect("json");
        assert_eq!(one["probabilities"], answers[i]["probabilities"], "record {i}");
    }
}
