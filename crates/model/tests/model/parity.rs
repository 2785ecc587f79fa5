//! The compiled engine predicts exactly what the trainer itself predicts.

use retail_model::data::parse_baskets;
use retail_model::engine::{Engine, SplitTest};
use retail_model::features::{FIRST_CATEGORICAL, FeatureSpec, N_FEATURES};
use retail_model::progress::Silent;
use retail_model::rng::Rng;
use retail_model::synth::{GenConfig, generate};
use retail_model::training::{TrainConfig, fit};

#[test]
fn engine_equals_trainer_on_random_rows_within_1e_9() {
    let mut data = Vec::new();
    generate(GenConfig { baskets: 30_000, seed: 5 }, &mut data, None, &Silent).expect("generate");
    let baskets = parse_baskets(&data, &Silent).expect("parse");
    let config = TrainConfig::new("unused".into(), "unused".into(), "2026-01-01T00:00:00Z".into());
    let fitted = fit(&baskets, &config, &Silent).expect("fit");
    let engine = Engine::compile(&fitted.spec).expect("compile");
    assert!(engine.n_trees() >= 30, "a real ensemble: {} trees", engine.n_trees());

    // Thresholds the model uses, per numeric feature: rows hit them exactly, just above and below.
    let mut thresholds = vec![Vec::new(); N_FEATURES];
    for node in fitted.spec.trees.iter().flat_map(|t| &t.nodes) {
        if let SplitTest::Threshold(t) = node.test {
            thresholds[node.feature].push(t);
        }
    }
    // Categorical: vocabulary size; numeric: the largest training value.
    let range: Vec<f64> = fitted
        .schema
        .features
        .iter()
        .map(|f| match f {
            FeatureSpec::Categorical { vocabulary, .. } => vocabulary.len() as f64,
            FeatureSpec::Numeric { max, .. } => *max,
        })
        .collect();
    let mut rng = Rng::new(1, 2, 3);
    let (mut a, mut b) = ([0.0; 3], [0.0; 3]);
    let mut worst: f64 = 0.0;
    let n = 20_000;
    for _ in 0..n {
        let mut row = [0.0; N_FEATURES];
        for (f, x) in row.iter_mut().enumerate() {
            *x = if f >= FIRST_CATEGORICAL {
                // Codes 0 (unseen) ..= vocabulary size.
                rng.below(range[f] as usize + 1) as f64
            } else if !thresholds[f].is_empty() && rng.chance(0.5) {
                let t = thresholds[f][rng.below(thresholds[f].len())];
                match rng.below(3) {
                    0 => t,
                    1 => t.next_up(),
                    _ => t.next_down(),
                }
            } else {
                rng.uniform() * range[f] * 1.1
            };
        }
        fitted.booster.predict_proba(&row, &mut a);
        engine.predict_proba(&row, &mut b);
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max((x - y).abs());
        }
    }
    assert!(worst <= 1e-9, "largest difference {worst:e}");
    // Batch scoring agrees with single rows.
    let rows: Vec<f64> = (0..1000)
        .flat_map(|i| {
            let mut r = [0.0; N_FEATURES];
            r[0] = f64::from(i);
            r[1] = 1.0 + f64::from(i % 7);
            r[2] = r[0] / r[1];
            r
        })
        .collect();
    let mut batch = vec![0.0; 3000];
    engine.predict_batch_parallel(&rows, &mut batch);
    for (row, p) in rows.chunks(N_FEATURES).zip(batch.chunks(3)) {
        engine.predict_proba(row, &mut b);
        assert_eq!(p, b);
    }
}
