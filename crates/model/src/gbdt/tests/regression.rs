//! The regression objectives learn a known mean, deterministically whatever the thread count,
//! refuse labels they cannot take, and the engine predicts exactly what the trainer does.

use rayon::ThreadPoolBuilder;

use super::super::*;
use crate::engine::{Engine, EnsembleSpec, Output};
use crate::metrics::{evaluate_regression, poisson_unit_deviance};
use crate::progress::Silent;
use crate::rng::Rng;

/// x0 uniform in [-1, 1], x1 a category of 5, x2 and x3 uniform in [-1, 1].
const KINDS: [FeatureKind; 4] =
    [FeatureKind::Numeric, FeatureKind::Categorical { n_codes: 5 }, FeatureKind::Numeric, FeatureKind::Numeric];

/// Rows, targets drawn around a known mean, and those means.
struct Sample {
    rows: Vec<f64>,
    y: Vec<f64>,
    mean: Vec<f64>,
}

/// `n` rows whose target is drawn by `draw(rng, mean)` around `mean(row)`.
fn sample(n: usize, seed: u64, mean: fn(&[f64]) -> f64, draw: fn(&mut Rng, f64) -> f64) -> Sample {
    let mut rng = Rng::new(seed, 7, 0);
    let mut s = Sample { rows: Vec::with_capacity(4 * n), y: Vec::with_capacity(n), mean: Vec::with_capacity(n) };
    for _ in 0..n {
        let row =
            [2.0 * rng.uniform() - 1.0, rng.below(5) as f64, 2.0 * rng.uniform() - 1.0, 2.0 * rng.uniform() - 1.0];
        let m = mean(&row);
        s.rows.extend(row);
        s.y.push(draw(&mut rng, m));
        s.mean.push(m);
    }
    s
}

/// 1 when the row's category is 2.
fn category_2(row: &[f64]) -> f64 {
    f64::from(u8::from(row[1] == 2.0))
}

/// Counts ~ Poisson(exp(0.5 + x0 − 0.7·[x1 = 2] + 0.8·(x2 − x3))): means from 0.07 to 20, a
/// product of effects (a sum in the log).
fn counts(n: usize, seed: u64) -> Sample {
    let mean = |row: &[f64]| (0.5 + row[0] - 0.7 * category_2(row) + 0.8 * (row[2] - row[3])).exp();
    sample(n, seed, mean, |rng, m| f64::from(rng.poisson(m)))
}

/// Values = 2 + 3·x0 − 1.5·[x1 = 2] + N(0, 0.5²); x2 and x3 are noise.
fn linear(n: usize, seed: u64) -> Sample {
    sample(n, seed, |row| 2.0 + 3.0 * row[0] - 1.5 * category_2(row), |rng, m| m + 0.5 * rng.normal())
}

fn fit(objective: Objective, params: &Params, train_set: &Sample, valid_set: &Sample) -> Booster {
    let train_set = Dataset { rows: &train_set.rows, labels: Labels::Values(&train_set.y) };
    let valid_set = Dataset { rows: &valid_set.rows, labels: Labels::Values(&valid_set.y) };
    train(params, &KINDS, objective, train_set, valid_set, &Silent).expect("train")
}

fn predictions(booster: &Booster, rows: &[f64]) -> Vec<f64> {
    rows.chunks(4).map(|row| booster.predict_value(row)).collect()
}

fn mean_deviance(predictions: &[f64], y: &[f64]) -> f64 {
    evaluate_regression(predictions, y).poisson_deviance.expect("counts")
}

#[test]
fn poisson_reaches_the_deviance_of_the_true_mean_and_beats_squared_error() {
    let (train_set, valid_set, test) = (counts(20_000, 1), counts(5_000, 2), counts(20_000, 3));
    let params = Params::default();
    let poisson = fit(Objective::poisson(), &params, &train_set, &valid_set);
    assert_eq!(poisson.objective().output(), Output::Exp);
    assert!(poisson.best_iteration > 3 && poisson.best_iteration < poisson.rounds_run, "early stopping");
    assert!(poisson.validation_loss[poisson.best_iteration - 1] < poisson.validation_loss[0]);
    let truth = mean_deviance(&test.mean, &test.y);
    let learned = mean_deviance(&predictions(&poisson, &test.rows), &test.y);
    let constant = mean_deviance(&vec![train_set.y.iter().sum::<f64>() / 20_000.0; test.y.len()], &test.y);
    assert!(learned <= 1.04 * truth, "Poisson deviance {learned} vs {truth} of the true mean");
    assert!(constant > 1.5 * truth, "the features matter: {constant} vs {truth}");
    // Squared error fits sums of effects, and its low predictions can reach 0 or below.
    let squared = fit(Objective::SquaredError, &params, &train_set, &valid_set);
    let squared_deviance = mean_deviance(&predictions(&squared, &test.rows), &test.y);
    assert!(learned < 0.97 * squared_deviance, "Poisson {learned} vs squared error {squared_deviance}");
    // The validation loss it stopped on is the mean deviance.
    let valid_deviance = mean_deviance(&predictions(&poisson, &valid_set.rows), &valid_set.y);
    assert!((valid_deviance - poisson.validation_loss[poisson.best_iteration - 1]).abs() < 1e-12);
}

#[test]
fn squared_error_reaches_the_noise_level() {
    let (train_set, valid_set, test) = (linear(20_000, 4), linear(5_000, 5), linear(20_000, 6));
    let booster = fit(Objective::SquaredError, &Params::default(), &train_set, &valid_set);
    assert_eq!(booster.objective().output(), Output::Identity);
    let m = evaluate_regression(&predictions(&booster, &test.rows), &test.y);
    let noise = evaluate_regression(&test.mean, &test.y).rmse;
    assert!((noise - 0.5).abs() < 0.01, "{noise}");
    assert!(m.rmse < 1.05 * noise, "RMSE {} vs noise {noise}", m.rmse);
    assert!(m.bias.expect("positive total").abs() < 0.01, "{:?}", m.bias);
    let mse = booster.validation_loss[booster.best_iteration - 1];
    let valid_rmse = evaluate_regression(&predictions(&booster, &valid_set.rows), &valid_set.y).rmse;
    assert!((mse.sqrt() - valid_rmse).abs() < 1e-12, "early stopping watched the mean squared error");
}

#[test]
fn training_is_deterministic_across_thread_pools() {
    // More rows than a histogram chunk (32,768), so the reduction over chunks is exercised.
    let (train_set, valid_set) = (counts(40_000, 7), counts(3_000, 8));
    let params = Params { max_rounds: 12, ..Params::default() };
    let specs = |threads: usize| {
        let pool = ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
        pool.install(|| {
            [Objective::poisson(), Objective::SquaredError].map(|objective| {
                let spec = fit(objective, &params, &train_set, &valid_set).to_spec(&["units".into()]);
                serde_json::to_string(&spec).expect("json")
            })
        })
    };
    let (one, two) = (specs(1), specs(2));
    assert!(one[0].contains(r#""output":"exp""#) && one[1].contains(r#""output":"identity""#));
    assert!(one == two, "1 and 2 threads give different ensembles");
}

#[test]
fn spec_round_trips_and_the_engine_predicts_what_the_trainer_does() {
    let (train_set, valid_set, test) = (counts(10_000, 9), counts(3_000, 10), counts(5_000, 11));
    for objective in [Objective::poisson(), Objective::SquaredError] {
        let booster = fit(objective, &Params { max_rounds: 60, ..Params::default() }, &train_set, &valid_set);
        let spec = booster.to_spec(&["units".into()]);
        assert_eq!((spec.classes.as_slice(), spec.output), (["units".to_owned()].as_slice(), objective.output()));
        let back: EnsembleSpec = serde_json::from_str(&serde_json::to_string(&spec).expect("json")).expect("parse");
        assert_same_up_to_an_ulp(
            &serde_json::to_value(&back).expect("json"),
            &serde_json::to_value(&spec).expect("json"),
        );
        let engine = Engine::compile(&back).expect("compile");
        let mut batch = vec![0.0; test.y.len()];
        engine.predict_values(&test.rows, &mut batch);
        for (row, &b) in test.rows.chunks(4).zip(&batch) {
            let (want, got) = (booster.predict_value(row), engine.predict_value(row));
            assert!((got - want).abs() <= 1e-12 * want.abs(), "{objective:?}: {got} != {want}");
            assert_eq!(b, got);
        }
    }
}

/// `a` and `b` are the same JSON but for numbers one rounding apart: serde_json, without its
/// `float_roundtrip` feature, may parse a double 1 ULP off what it wrote.
fn assert_same_up_to_an_ulp(a: &serde_json::Value, b: &serde_json::Value) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().expect("number"), y.as_f64().expect("number"));
            assert!((x - y).abs() <= x.abs().max(y.abs()) * f64::EPSILON, "{x} != {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).for_each(|(x, y)| assert_same_up_to_an_ulp(x, y));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert!(x.keys().eq(y.keys()), "{x:?} {y:?}");
            x.values().zip(y.values()).for_each(|(x, y)| assert_same_up_to_an_ulp(x, y));
        }
        _ => assert_eq!(a, b),
    }
}

#[test]
fn all_zero_counts_train_to_a_near_zero_prediction() {
    let zero = |s: Sample| Sample { y: vec![0.0; s.y.len()], ..s };
    let booster = fit(Objective::poisson(), &Params::default(), &zero(counts(2_000, 12)), &zero(counts(500, 13)));
    let engine = Engine::compile(&booster.to_spec(&["units".into()])).expect("compile");
    let p = engine.predict_value(&[0.0, 1.0, 0.0, 0.0]);
    assert!(p.is_finite() && (0.0..1e-9).contains(&p), "{p}");
    assert!(poisson_unit_deviance(0.0, p) < 1e-8);
}

#[test]
fn labels_the_objective_cannot_take_are_refused() {
    let rows = [0.0, 1.0, 0.0, 0.0, 0.5, 2.0, 1.0, 1.0];
    let run = |objective: Objective, labels: Labels<'_>| {
        let set = Dataset { rows: &rows, labels };
        train(&Params::default(), &KINDS, objective, set, set, &Silent).map(|_| ())
    };
    let poisson = Objective::poisson();
    assert!(matches!(
        run(poisson, Labels::Values(&[1.0, -1.0])),
        Err(InputError::Label { set: "training", row: 1, .. })
    ));
    assert!(matches!(run(poisson, Labels::Values(&[1.0, 2e6])), Err(InputError::Label { row: 1, .. })));
    assert!(matches!(run(Objective::SquaredError, Labels::Values(&[f64::NAN, 1.0])), Err(InputError::Label { .. })));
    assert!(matches!(run(poisson, Labels::Classes(&[0, 1])), Err(InputError::LabelKind { .. })));
    assert!(matches!(
        run(Objective::Softmax { n_classes: 2 }, Labels::Values(&[0.0, 1.0])),
        Err(InputError::LabelKind { expected: "class", .. })
    ));
    assert!(matches!(
        run(Objective::Softmax { n_classes: 2 }, Labels::Classes(&[0, 2])),
        Err(InputError::Label { .. })
    ));
    assert!(matches!(run(Objective::Softmax { n_classes: 1 }, Labels::Classes(&[0, 0])), Err(InputError::Classes(1))));
    let step = Objective::Poisson { max_delta_step: f64::NAN };
    assert!(matches!(run(step, Labels::Values(&[1.0, 2.0])), Err(InputError::MaxDeltaStep(_))));
    assert!(matches!(run(poisson, Labels::Values(&[1.0])), Err(InputError::Shape { values: 8, rows: 1, .. })));
    let empty = Dataset { rows: &[], labels: Labels::Values(&[]) };
    let err = train(&Params::default(), &KINDS, poisson, empty, empty, &Silent).map(|_| ());
    assert_eq!(err, Err(InputError::Empty));
    assert_eq!(run(poisson, Labels::Values(&[0.0, 3.0])), Ok(()));
}

#[test]
#[should_panic(expected = "regression booster")]
fn predict_value_of_a_classifier_panics() {
    let rows = [0.0, 1.0, 0.0, 0.0, 0.5, 2.0, 1.0, 1.0];
    let set = Dataset { rows: &rows, labels: Labels::Classes(&[0, 1]) };
    let booster = train(&Params::default(), &KINDS, Objective::Softmax { n_classes: 2 }, set, set, &Silent);
    booster.expect("train").predict_value(&[0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn objectives_serialize_by_name() {
    let json = serde_json::to_string(&[Objective::poisson(), Objective::SquaredError]).expect("json");
    assert_eq!(json, r#"[{"name":"poisson","max_delta_step":0.7},{"name":"squared_error"}]"#);
    let back: Vec<Objective> = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, [Objective::poisson(), Objective::SquaredError]);
}
