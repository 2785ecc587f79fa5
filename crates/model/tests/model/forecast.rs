//! The sales forecast: trained on generated data it comes close to the Bayes-optimal prediction
//! on the latest days, its split is by date, its bytes do not depend on the thread count, and its
//! artifacts load only when whole (the committed `models/sales-forecast` is the embedded one).

use std::fs;
use std::path::{Path, PathBuf};

use retail_model::artifact::{
    Artifact, ArtifactError, FORECAST_FILE, MANIFEST_FILE, MODEL_FILE, ModelKind, ModelMetrics, sha256_hex,
};
use retail_model::forecast::data::{parse_sales, parse_sales_truth};
use retail_model::forecast::training::{SalesTrainConfig, TimeSplit, fit_sales, train_sales};
use retail_model::forecast::{N_FEATURES, SalesColumns, SalesRecord, SalesStats, encode};
use retail_model::metrics::evaluate_regression;
use retail_model::progress::Silent;
use retail_model::synth::sales::{SalesConfig, generate};
use retail_model::time::days_from_civil;

/// Generated sales rows and each row's true mean.
fn generated(stores: u32, products: u32, start: i64, days: u32, seed: u64) -> (SalesColumns, Vec<f64>, Vec<u8>) {
    let config = SalesConfig { seed, stores, products, start, days };
    let (mut data, mut truth) = (Vec::new(), Vec::new());
    generate(config, &mut data, Some(&mut truth), &Silent).expect("generate");
    let columns = parse_sales(&data, &Silent).expect("parse");
    let mu = parse_sales_truth(&truth).expect("truth").aligned(&columns).expect("aligned");
    (columns, mu, data)
}

fn config() -> SalesTrainConfig {
    SalesTrainConfig::new("sales.csv".into(), "m".into(), "2026-01-01T00:00:00Z".to_owned())
}

/// The quality target, on a smaller world than the default (docs/benchmarks.md has the
/// default size): two full years, so the test split (the last four weeks) holds Christmas and
/// Boxing Day, seen once in training on other weekdays. Held-out mean Poisson deviance within
/// 3% of the Bayes deviance, WAPE within 1 point of the Bayes WAPE, |bias| at most 1%.
#[test]
fn the_forecast_reaches_the_quality_target_against_the_bayes_optimum() {
    let (columns, mu, _) = generated(8, 60, days_from_civil(2023, 1, 1), 731, 21);
    let fitted = fit_sales(&columns, &config(), &Silent).expect("fit");
    let test = &fitted.split.assign(&columns.day)[2];
    assert_eq!(fitted.rows.dates.as_ref().map(|d| d.test.first.as_str()), Some("2024-12-04"));
    let units: Vec<f64> = test.iter().map(|&i| f64::from(columns.units[i])).collect();
    let best: Vec<f64> = test.iter().map(|&i| mu[i]).collect();
    let bayes = evaluate_regression(&best, &units);
    let model = &fitted.test_metrics;
    assert_eq!(model.rows, test.len());
    let (deviance, bayes_deviance) = (model.poisson_deviance.expect("counts"), bayes.poisson_deviance.expect("counts"));
    let (wape, bayes_wape) = (model.wape.expect("sold"), bayes.wape.expect("sold"));
    let bias = model.bias.expect("sold");
    let report = format!(
        "deviance {deviance:.4} vs Bayes {bayes_deviance:.4}, WAPE {wape:.4} vs {bayes_wape:.4}, bias {bias:+.4} (Bayes {:+.4}), \
         {} rounds",
        bayes.bias.expect("sold"),
        fitted.booster.best_iteration
    );
    assert!(deviance <= 1.03 * bayes_deviance, "{report}");
    assert!(wape - bayes_wape <= 0.01, "{report}");
    assert!(bias.abs() <= 0.01, "{report}");
}

#[test]
fn the_split_is_by_date_and_the_stats_are_the_artifacts_bytes_fitted_on_training_days_only() {
    let (columns, _, _) = generated(2, 12, days_from_civil(2023, 3, 1), 150, 4);
    let mut config = config();
    config.validation_days = 10;
    config.test_days = 7;
    config.params.max_rounds = 5;
    let fitted = fit_sales(&columns, &config, &Silent).expect("fit");
    let split = fitted.split;
    let last = days_from_civil(2023, 3, 1) + 149;
    assert_eq!((split.test_start, split.validation_start, split.last_day), (last - 6, last - 16, last));
    let [train, valid, test] = split.assign(&columns.day);
    let days = |rows: &[usize]| rows.iter().map(|&i| columns.day[i]).collect::<Vec<_>>();
    let latest_train = days(&train).into_iter().max().expect("rows");
    assert!(days(&valid).iter().all(|&d| d > latest_train && d < split.test_start));
    assert!(days(&test).iter().all(|&d| d >= split.test_start));
    assert_eq!((fitted.rows.train, fitted.rows.validation, fitted.rows.test), (train.len(), valid.len(), test.len()));
    assert_eq!(test.len(), 2 * 12 * 7);
    // The statistics saw the training rows only, and are exactly what forecast.json holds.
    assert_eq!(fitted.stats.rows, train.len() as u64);
    assert_eq!(fitted.stats, SalesStats::from_json(&fitted.stats_json).expect("parse"));
    let dates = fitted.rows.dates.as_ref().expect("dates");
    assert_eq!((dates.train.first.as_str(), dates.test.last.as_str()), ("2023-03-01", "2023-07-28"));

    let too_long = SalesTrainConfig { validation_days: 100, test_days: 50, ..config.clone() };
    let err = fit_sales(&columns, &too_long, &Silent).err().expect("no training days").to_string();
    assert!(err.contains("150 days") && err.contains("none for training"), "{err}");
    assert!(TimeSplit::new(&columns.day, 0, 7).is_err());
}

#[test]
fn training_is_deterministic_whatever_the_thread_count() {
    let (columns, _, _) = generated(2, 10, days_from_civil(2023, 1, 1), 120, 9);
    let mut config = config();
    config.params.max_rounds = 20;
    let fit = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        let fitted = pool.install(|| fit_sales(&columns, &config, &Silent).expect("fit"));
        (serde_json::to_vec(&fitted.spec).expect("json"), fitted.stats_json, fitted.test_metrics)
    };
    let one = fit(1);
    assert!(one == fit(3), "same model.json, forecast.json and metrics on 1 and 3 threads");
}

/// Writes a small forecast artifact trained on generated data.
fn small_artifact(dir: &Path) -> Vec<u8> {
    let (_, _, data) = generated(2, 8, days_from_civil(2023, 11, 1), 120, 5);
    let csv = dir.join("sales.csv");
    fs::write(&csv, &data).expect("write");
    let mut config = SalesTrainConfig::new(csv, dir.join("m"), "2026-01-01T00:00:00Z".to_owned());
    config.params.max_rounds = 15;
    let manifest = train_sales(&config, &Silent).expect("train");
    assert_eq!(manifest.kind, ModelKind::SalesForecast);
    data
}

#[test]
fn a_trained_forecast_artifact_loads_scores_and_round_trips() {
    let tmp = tempfile::tempdir().expect("tmp");
    small_artifact(tmp.path());
    let dir = tmp.path().join("m");
    let artifact = Artifact::load(&dir).expect("loads");
    let m = &artifact.manifest;
    assert_eq!(
        (m.name.as_str(), m.target.as_str(), m.kind),
        ("retail-sales-forecast", "units", ModelKind::SalesForecast)
    );
    assert_eq!(m.classes.len(), 1);
    assert_eq!(
        (m.classes[0].code.as_str(), m.classes[0].label.as_str()),
        ("units", "Units sold per store, product and day")
    );
    assert!(m.input_schema.is_none() && matches!(m.metrics, ModelMetrics::Regression(_)));
    assert_eq!(m.training.validation_metric.as_deref(), Some("poisson_deviance"));
    assert!(m.training.validation_loss.is_some() && m.training.validation_log_loss.is_none());
    assert!(m.files.contains_key(FORECAST_FILE) && m.files.contains_key("card.md"));
    assert_eq!(artifact.engine.n_features(), N_FEATURES);
    // The manifest serialises back to the same JSON (up to a float's last digit, see
    // numbers_masked), and the stats to the same value.
    let text = fs::read(dir.join(MANIFEST_FILE)).expect("manifest");
    let again: retail_model::artifact::Manifest = serde_json::from_slice(&text).expect("parse");
    let again = serde_json::to_vec_pretty(&again).expect("json");
    assert_eq!(crate::numbers_masked(&again), crate::numbers_masked(&text));
    let stats = artifact.sales().expect("a forecast");
    assert_eq!(*stats, SalesStats::from_json(&fs::read(dir.join(FORECAST_FILE)).expect("read")).expect("parse"));
    // It scores a request of a product it knows, without warnings.
    let known = stats.products[0].id;
    let record = SalesRecord { store_id: 1, product_id: known, date: "2024-03-01", price: 2.5, promotion: 1 };
    let encoded = encode(&record, stats).expect("valid");
    assert!(encoded.unseen.is_empty());
    let units = artifact.engine.predict_value(&encoded.features);
    assert!(units.is_finite() && units > 0.0, "{units}");
    // A .tar.gz of it loads too.
    let (packed, bytes) = retail_model::artifact::pack(&dir).expect("pack");
    let unpacked = Artifact::from_tar_gz(bytes, "m.tar.gz").expect("tar.gz loads");
    assert_eq!(packed.manifest, unpacked.manifest);
}

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/sales-forecast")
}

fn copy_committed(to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(committed_dir()).expect("models/sales-forecast") {
        let entry = entry.expect("entry");
        fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

/// Replaces a file of an artifact directory and lists it in the manifest with its new checksum.
fn replace_listed(dir: &Path, file: &str, content: &[u8]) {
    fs::write(dir.join(file), content).expect("write");
    let path = dir.join(MANIFEST_FILE);
    let mut manifest: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    manifest["files"][file] = serde_json::json!({ "sha256": sha256_hex(content), "bytes": content.len() });
    fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
}

#[test]
fn the_committed_forecast_is_the_embedded_one_and_scores_the_seed_example_without_warnings() {
    let disk = Artifact::load(&committed_dir()).expect("models/sales-forecast loads");
    let embedded = Artifact::embedded_forecast().expect("embedded forecast loads");
    assert_eq!(disk.manifest, embedded.manifest);
    assert_eq!(embedded.kind(), ModelKind::SalesForecast);
    assert_eq!(Artifact::embedded(ModelKind::SalesForecast).expect("by kind").manifest, embedded.manifest);
    assert_eq!(Artifact::embedded(ModelKind::BasketClassifier).expect("basket").kind(), ModelKind::BasketClassifier);
    let seed = SalesRecord { store_id: 1, product_id: 123, date: "2024-01-01", price: 29.99, promotion: 0 };
    let encoded = encode(&seed, embedded.sales().expect("stats")).expect("valid");
    assert!(encoded.unseen.is_empty(), "{:?}", encoded.unseen);
    let units = embedded.engine.predict_value(&encoded.features);
    assert!(units > 0.05 && units < 10.0, "{units}");
}

#[test]
fn forecast_artifacts_without_whole_stats_or_with_the_wrong_ensemble_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fresh = |name: &str| {
        let dir = tmp.path().join(name);
        copy_committed(&dir);
        dir
    };
    let stats = fs::read(committed_dir().join(FORECAST_FILE)).expect("stats");

    let dir = fresh("missing");
    fs::remove_file(dir.join(FORECAST_FILE)).expect("rm");
    let err = Artifact::load(&dir).expect_err("missing");
    assert!(matches!(&err, ArtifactError::MissingFile { file } if file == FORECAST_FILE), "{err}");

    // Present but not listed: its bytes are not covered by a checksum, so it is not used.
    let dir = fresh("unlisted");
    let path = dir.join(MANIFEST_FILE);
    let mut manifest: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    manifest["files"].as_object_mut().expect("files").remove(FORECAST_FILE);
    fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
    let err = Artifact::load(&dir).expect_err("unlisted");
    assert!(matches!(&err, ArtifactError::MissingFile { file } if file == FORECAST_FILE), "{err}");

    let dir = fresh("tampered");
    let mut changed = stats.clone();
    let i = changed.iter().position(|&c| c == b'7').expect("a digit");
    changed[i] = b'8';
    fs::write(dir.join(FORECAST_FILE), &changed).expect("write");
    let err = Artifact::load(&dir).expect_err("tampered");
    assert!(matches!(&err, ArtifactError::Checksum { file, .. } if file == FORECAST_FILE), "{err}");

    // Listed with a matching checksum but not valid statistics.
    let dir = fresh("invalid");
    let text = String::from_utf8(stats).expect("utf8");
    replace_listed(&dir, FORECAST_FILE, text.replacen("\"version\": 1", "\"version\": 7", 1).as_bytes());
    let err = Artifact::load(&dir).expect_err("invalid");
    assert!(matches!(&err, ArtifactError::Invalid { file, .. } if file == FORECAST_FILE), "{err}");

    // A classifier's ensemble (three softmax outputs) under a forecast manifest naming its classes.
    let dir = fresh("classifier");
    let basket = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/default");
    replace_listed(&dir, MODEL_FILE, &fs::read(basket.join(MODEL_FILE)).expect("basket model"));
    let err = Artifact::load(&dir).expect_err("classes differ");
    assert!(err.to_string().contains("differ from the manifest"), "{err}");
    let path = dir.join(MANIFEST_FILE);
    let mut manifest: serde_json::Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    let basket_manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(basket.join(MANIFEST_FILE)).expect("read")).expect("json");
    manifest["classes"] = basket_manifest["classes"].clone();
    fs::write(&path, serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
    let err = Artifact::load(&dir).expect_err("classifier");
    assert!(matches!(&err, ArtifactError::Invalid { file, .. } if file == MODEL_FILE), "{err}");
    assert!(err.to_string().contains("one output"), "{err}");

    // An ensemble that expects more features than the forecast pipeline computes.
    let dir = fresh("features");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&fs::read(committed_dir().join(MODEL_FILE)).expect("model")).expect("json");
    spec["n_features"] = (N_FEATURES + 1).into();
    replace_listed(&dir, MODEL_FILE, &serde_json::to_vec(&spec).expect("json"));
    let err = Artifact::load(&dir).expect_err("features");
    assert!(err.to_string().contains(&format!("the pipeline computes {N_FEATURES}")), "{err}");
}
