//! Tabular models end to end in the library: generated tables with missing values train to
//! near the Bayes-optimal accuracy, artifacts load and score exactly as training encoded, and
//! bad CSVs get clear errors naming the line and column, with nothing written.

use std::io::Write;
use std::path::{Path, PathBuf};

use retail_model::artifact::{Artifact, ModelKind, ModelMetrics};
use retail_model::progress::Silent;
use retail_model::synth::tabular::{TabularConfig, generate};
use retail_model::tabular::data::Roles;
use retail_model::tabular::split::{Shares, SplitBy};
use retail_model::tabular::training::{Overrides, TabularTrainConfig, train_tabular};
use retail_model::tabular::{TabularSchema, Value};
use retail_model::training::TrainError;

fn config(data: &Path, label: &str, out: &Path) -> TabularTrainConfig {
    TabularTrainConfig {
        data: data.to_owned(),
        roles: Roles { label: label.to_owned(), ..Roles::default() },
        task: None,
        poisson: false,
        split: SplitBy::Random,
        shares: Shares { validation: 0.1, test: 0.2 },
        test_data: None,
        seed: 42,
        overrides: Overrides::default(),
        out: out.to_owned(),
        replace: false,
        name: None,
        version: None,
        created_at: "2026-12-01T00:00:00Z".to_owned(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write csv");
    path
}

#[test]
fn a_generated_table_with_missing_values_trains_near_the_bayes_accuracy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("t.csv");
    let mut bytes = Vec::new();
    let summary = generate(TabularConfig { rows: 20_000, seed: 3 }, &mut bytes, None, &Silent).expect("generate");
    std::fs::write(&data, &bytes).expect("write");
    let out = tmp.path().join("m");
    let manifest = train_tabular(&config(&data, "label", &out), &Silent).expect("train");
    assert_eq!(manifest.kind, ModelKind::TabularClassifier);
    let ModelMetrics::Classification(m) = &manifest.metrics else { panic!("classifier metrics") };
    // The Bayes accuracy of these rows; a held-out sample of 4,000 varies by about 0.7 points.
    assert!(m.accuracy > summary.bayes_accuracy - 0.03, "accuracy {} vs Bayes {}", m.accuracy, summary.bayes_accuracy);
    assert!(m.roc_auc.is_some_and(|a| a > 0.85), "{:?}", m.roc_auc);
    let artifact = Artifact::load(&out).expect("load");
    let schema: &TabularSchema = artifact.tabular().expect("tabular");
    assert_eq!(schema.len(), 20);
    assert!(schema.columns[2].missing_share > 0.03, "{:?}", schema.columns[2]);
    // Missing values are routed: a row with f3 missing scores differently from f3 present.
    let score = |f3: Value<'_>| {
        let mut values = vec![Value::Number(12.0); 20];
        values[2] = f3;
        let (mut row, mut warnings) = (Vec::new(), Vec::new());
        schema.encode(&values, "", &mut row, &mut warnings).expect("encode");
        let mut p = vec![0.0; 2];
        artifact.engine.predict_proba(&row, &mut p);
        p[1]
    };
    assert_ne!(score(Value::Missing), score(Value::Number(12.0)));
    assert_eq!(score(Value::Missing), score(Value::Text("NA")));
}

#[test]
fn categorical_columns_regressions_and_a_separate_test_file_work() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut text = String::from("id,store,size,promo,units\n");
    let mut test = text.clone();
    for i in 0..3000u32 {
        let store = ["north", "south", "east", "west"][(i % 4) as usize];
        let size = if i % 7 == 0 { String::new() } else { f64::from(i % 50).to_string() };
        let promo = i % 3 == 0;
        let base = match store {
            "north" => 10.0,
            "south" => 20.0,
            _ => 5.0,
        };
        let units = base + if promo { 8.0 } else { 0.0 } + if size.is_empty() { 3.0 } else { f64::from(i % 50) / 10.0 };
        let line = format!("{i},{store},{size},{},{units}\n", u8::from(promo));
        if i % 5 == 0 { test.push_str(&line) } else { text.push_str(&line) }
    }
    let data = write(tmp.path(), "train.csv", &text);
    let test_data = write(tmp.path(), "test.csv", &test);
    let out = tmp.path().join("units");
    let mut config = config(&data, "units", &out);
    config.roles.ignore = vec!["id".to_owned()];
    config.test_data = Some(test_data);
    let manifest = train_tabular(&config, &Silent).expect("train");
    assert_eq!((manifest.kind, manifest.name.as_str()), (ModelKind::TabularRegressor, "units"));
    let ModelMetrics::Regression(m) = &manifest.metrics else { panic!("regression metrics") };
    assert_eq!((m.rows, manifest.training.rows.test), (600, 0));
    assert!(m.r2.is_some_and(|r2| r2 > 0.98), "R² {:?}", m.r2);
    let artifact = Artifact::load(&out).expect("load");
    let schema = artifact.tabular().expect("tabular");
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["store", "size", "promo"]);
    assert!(
        matches!(&schema.columns[0].kind, retail_model::tabular::ColumnKind::Categorical { vocabulary } if vocabulary.len() == 4)
    );
}

/// Trains on `csv` and returns the error text; checks nothing was written.
fn refused(csv: &[u8], label: &str, change: impl FnOnce(&mut TabularTrainConfig)) -> String {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("bad.csv");
    std::fs::write(&data, csv).expect("write");
    let out = tmp.path().join("m");
    let mut config = config(&data, label, &out);
    change(&mut config);
    let err = train_tabular(&config, &Silent).expect_err("refused");
    assert!(!out.exists(), "nothing is written on failure");
    let text = err.to_string();
    assert!(matches!(err, TrainError::Table { .. } | TrainError::Config(_)), "{text}");
    text
}

fn rows(n: usize, line: impl Fn(usize) -> String) -> Vec<u8> {
    let mut text = String::from("a,b,y\n");
    (0..n).for_each(|i| text.push_str(&line(i)));
    text.into_bytes()
}

#[test]
fn bad_csvs_get_clear_errors_naming_line_and_column() {
    let one_class = refused(&rows(100, |i| format!("{i},{},yes\n", i % 3)), "y", |_| {});
    assert!(one_class.contains("has one class (\"yes\")"), "{one_class}");
    let no_label = refused(&rows(100, |i| format!("{i},1,0\n")), "target", |_| {});
    assert!(no_label.contains("no column \"target\" (--label)") && no_label.contains("a, b, y"), "{no_label}");
    let all_missing = refused(&rows(100, |i| format!("{i},,{}\n", i % 2)), "y", |_| {});
    assert!(all_missing.contains("column \"b\": all 100 values are missing"), "{all_missing}");
    let ragged =
        refused(&rows(100, |i| if i == 41 { "1,2\n".to_owned() } else { format!("{i},1,{}\n", i % 2) }), "y", |_| {});
    assert!(ragged.contains("line 43") && ragged.contains("ragged"), "{ragged}");
    let mixed = refused(
        &rows(100, |i| format!("{i},{},{}\n", if i == 57 { "12kg".to_owned() } else { i.to_string() }, i % 2)),
        "y",
        |_| {},
    );
    assert!(
        mixed.contains("line 59, column \"b\": \"12kg\" is not a number") && mixed.contains("--categorical b"),
        "{mixed}"
    );
    let forced = refused(&rows(100, |i| format!("{i},{},{}\n", if i == 3 { "x" } else { "1" }, i % 2)), "y", |c| {
        c.roles.numeric = vec!["b".to_owned()];
    });
    assert!(forced.contains("line 5, column \"b\": \"x\" is not a number (the column is --numeric)"), "{forced}");
    let no_label_value = refused(&rows(100, |i| format!("{i},1,{}\n", if i == 9 { "" } else { "1" })), "y", |_| {});
    assert!(
        no_label_value.contains("line 11, column \"y\"") && no_label_value.contains("every row needs a label"),
        "{no_label_value}"
    );
    let unknown =
        refused(&rows(100, |i| format!("{i},1,{}\n", i % 2)), "y", |c| c.roles.ignore = vec!["zz".to_owned()]);
    assert!(unknown.contains("no column \"zz\" (--ignore/--id-columns)"), "{unknown}");
}

#[test]
fn a_two_gigabyte_line_is_refused_after_one_mebibyte() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("huge.csv");
    let mut file = std::fs::File::create(&data).expect("create");
    file.write_all(b"a,y\n1,0\n2,1\n").expect("write");
    // A sparse 2 GiB line: reading it all would take 2 GiB of memory and minutes.
    file.set_len(2 * 1024 * 1024 * 1024 + 12).expect("extend");
    drop(file);
    let start = std::time::Instant::now();
    let err = train_tabular(&config(&data, "y", &tmp.path().join("m")), &Silent).expect_err("refused");
    assert!(err.to_string().contains("line 4 is longer than 1048576 bytes"), "{err}");
    assert!(start.elapsed().as_secs() < 30, "refused while reading, not after");
}

#[test]
fn artifacts_carry_reference_distributions_and_old_ones_without_load() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("t.csv");
    let mut bytes = Vec::new();
    generate(TabularConfig { rows: 3000, seed: 5 }, &mut bytes, None, &Silent).expect("generate");
    std::fs::write(&data, &bytes).expect("write");
    let out = tmp.path().join("m");
    train_tabular(&config(&data, "label", &out), &Silent).expect("train");
    let artifact = Artifact::load(&out).expect("load");
    let reference = artifact.reference.as_ref().expect("a reference");
    assert_eq!(reference.rows as usize, artifact.manifest.training.rows.train);
    let names: Vec<&str> = reference.features.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, artifact.feature_names().iter().map(String::as_str).collect::<Vec<_>>());
    // f3 has missing values: its missing bin counts some.
    let f3 = reference.features[2].histogram.counts();
    assert!(*f3.last().expect("missing bin") > 0, "{f3:?}");
    // An artifact written before references: the file and its manifest entry gone.
    let manifest_path = out.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    manifest["files"].as_object_mut().expect("files").remove("reference.json");
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
    std::fs::remove_file(out.join("reference.json")).expect("remove");
    assert!(Artifact::load(&out).expect("old artifact loads").reference.is_none());
}
