//! Explanations of the shipped models: base + Σ contributions is the engine's margin on 10,000
//! random rows (numeric values over many scales, category codes in and out of the vocabularies,
//! missing values), and an artifact without covers loads but cannot explain.

use std::path::{Path, PathBuf};

use retail_model::artifact::Artifact;
use retail_model::explain::{EXPLAIN_FILE, ExplainError};

/// SplitMix64: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A feature value: missing, a small integer (a category code, a count, a weekday), or a
    /// real of either sign from 1e-3 to 1e4.
    fn value(&mut self) -> f64 {
        match self.next() % 10 {
            0 => f64::NAN,
            1..=4 => (self.next() % 40) as f64,
            5 => -(self.unit() * 5.0),
            _ => (self.unit() * 16.0 - 7.0).exp2() * 10.0,
        }
    }
}

fn assert_additive(artifact: &Artifact, seed: u64) {
    let explainer = artifact.explainer.as_ref().expect("the shipped model has covers");
    let engine = &artifact.engine;
    let (nf, nc) = (engine.n_features(), engine.n_classes());
    let mut rng = Rng(seed);
    let rows: Vec<f64> = (0..10_000 * nf).map(|_| rng.value()).collect();
    let explanations = explainer.explain_batch(&rows);
    let mut margin = vec![0.0; nc];
    for (row, e) in rows.chunks(nf).zip(&explanations) {
        engine.raw_scores(row, &mut margin);
        for (c, m) in margin.iter().enumerate() {
            let got = e.margin(c);
            assert!(
                (got - m).abs() <= 1e-9 * m.abs().max(1.0),
                "{}: row {row:?} output {c}: {got} vs {m}",
                artifact.manifest.name
            );
        }
    }
    assert_eq!(explanations[0].of_output(0).len(), explainer.fields().len());
}

#[test]
fn default_model_contributions_add_up_to_the_margin_on_10000_random_rows() {
    let artifact = Artifact::embedded_default().expect("embedded");
    assert_eq!(
        artifact.explainer.as_ref().expect("covers").fields(),
        [
            "SPEND",
            "QUANTITY",
            "PROD_CODE_20",
            "PROD_CODE_30",
            "BASKET_SIZE",
            "BASKET_TYPE",
            "STORE_REGION",
            "STORE_FORMAT"
        ]
    );
    assert_additive(&artifact, 1);
}

#[test]
fn forecast_contributions_add_up_to_the_log_margin_on_10000_random_rows() {
    let artifact = Artifact::embedded_forecast().expect("embedded");
    assert_eq!(artifact.explainer.as_ref().expect("covers").space().as_str(), "log");
    assert_additive(&artifact, 2);
}

#[test]
fn tabular_contributions_add_up_to_the_margin_on_10000_random_rows() {
    let artifact = Artifact::load(&models().join("tabular")).expect("loads");
    assert_additive(&artifact, 3);
}

#[test]
fn shipped_models_carry_importance_of_every_field_most_important_first() {
    for artifact in [Artifact::embedded_default().expect("default"), Artifact::embedded_forecast().expect("forecast")] {
        let importance = artifact.importance.as_ref().expect("importance");
        let fields = artifact.explainer.as_ref().expect("covers").fields();
        assert_eq!(importance.fields.len(), fields.len());
        assert!(importance.fields.windows(2).all(|w| w[0].mean_abs >= w[1].mean_abs));
        assert!(importance.fields[0].mean_abs > 0.0);
    }
}

#[test]
fn an_artifact_without_covers_loads_and_refuses_to_explain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("m");
    std::fs::create_dir(&dir).expect("mkdir");
    for entry in std::fs::read_dir(models().join("default")).expect("read") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != EXPLAIN_FILE) {
            std::fs::copy(&path, dir.join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("read")).expect("json");
    manifest["files"].as_object_mut().expect("files").remove(EXPLAIN_FILE);
    std::fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).expect("json")).expect("write");
    let artifact = Artifact::load(&dir).expect("an artifact without covers still loads");
    let err = artifact.explainer.expect_err("no covers");
    assert!(matches!(err, ExplainError::NoCovers { .. }), "{err}");
    assert!(err.to_string().contains(EXPLAIN_FILE), "{err}");
    assert!(artifact.importance.is_none());
}

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}
