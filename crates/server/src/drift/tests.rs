use std::sync::atomic::{AtomicU64, Ordering};

use retail_model::drift::{FeatureReference, Histogram, MAX_CODES};

use super::*;

fn clock() -> (Clock, Arc<AtomicU64>) {
    let time = Arc::new(AtomicU64::new(1_700_000_000_000));
    let t = time.clone();
    (Arc::new(move || t.load(Ordering::Relaxed)), time)
}

fn limits(settings: &DriftSettings) -> Arc<WindowLimits> {
    Arc::new(WindowLimits::new(settings.window_rows, settings.window_seconds))
}

/// A numeric feature `x` (edges 1, 2; range [0, 3]), a categorical `c` (codes 0, 1) and a
/// two-class prediction, each with uniform reference counts.
fn reference() -> Reference {
    let numeric = Histogram::Numeric { edges: vec![1.0, 2.0], counts: vec![100, 100, 100, 0] };
    let categorical = Histogram::Categorical { codes: vec![0, 1], counts: vec![150, 150, 0] };
    Reference {
        rows: 300,
        features: vec![
            FeatureReference { name: "x".into(), histogram: numeric, range: Some([0.0, 3.0]) },
            FeatureReference { name: "c".into(), histogram: categorical, range: None },
        ],
        prediction: Histogram::Categorical { codes: vec![0, 1], counts: vec![150, 150, 0] },
        rules: Vec::new(),
    }
}

#[test]
fn the_largest_monitor_stays_within_one_mebibyte() {
    let wide = Histogram::Categorical { codes: (0..MAX_CODES as u32).collect(), counts: vec![1; MAX_CODES + 1] };
    let feature = |i: usize| FeatureReference { name: format!("f{i}"), histogram: wide.clone(), range: None };
    let reference = Reference {
        rows: 1,
        features: (0..MAX_FEATURES + 10).map(feature).collect(),
        prediction: wide.clone(),
        rules: Vec::new(),
    };
    let (clock, _) = clock();
    let monitor = DriftMonitor::new("m", &reference, true, limits(&DriftSettings::default()), clock);
    let bytes = monitor.counter_bytes();
    // 257 histograms of 65 bins, 10 sub-windows of 4-byte counters: 668,200 bytes and the rows.
    assert_eq!(monitor.window.bins(), (MAX_FEATURES + 1) * MAX_BINS);
    assert!(bytes <= 1024 * 1024, "{bytes} bytes");
}

#[test]
fn values_beyond_the_margin_are_out_of_range() {
    assert!(!out_of_range([0.0, 10.0], 10.9) && !out_of_range([0.0, 10.0], -0.9));
    assert!(out_of_range([0.0, 10.0], 11.1) && out_of_range([0.0, 10.0], -1.1));
    assert!(!out_of_range([0.0, 10.0], f64::NAN));
    assert!(out_of_range([5.0, 5.0], 5.1), "a constant feature: any other value");
}

#[test]
fn a_window_like_the_reference_is_ok_and_a_shifted_one_alerts() {
    let settings = DriftSettings { min_rows: 30, ..DriftSettings::default() };
    let (clock, _) = clock();
    let reference = reference();
    let monitor = DriftMonitor::new("m", &reference, true, limits(&settings), clock);
    let (_, features, prediction) = monitor.report(&reference, &settings);
    assert!(features.iter().chain([&prediction]).all(|s| s.status == Status::InsufficientData && s.psi.is_none()));
    for i in 0..30 {
        let class = if i % 2 == 0 { [0.9, 0.1] } else { [0.1, 0.9] };
        monitor.observe(&reference, &[0.5 + f64::from(i % 3), f64::from(i % 2)], &class);
    }
    let (window, features, prediction) = monitor.report(&reference, &settings);
    assert_eq!(window.rows, 30);
    assert!(window.since.as_deref().is_some_and(|s| s.starts_with("2023-11-14T22:13:20")), "{window:?}");
    assert!(features.iter().chain([&prediction]).all(|s| s.status == Status::Ok), "{features:?} {prediction:?}");
    assert!(features[1].linf.is_some() && features[0].linf.is_none());
    for _ in 0..30 {
        monitor.observe(&reference, &[7.0, 1.0], &[0.2, 0.8]);
    }
    let (_, features, prediction) = monitor.report(&reference, &settings);
    assert!(features.iter().chain([&prediction]).all(|s| s.status == Status::Alert && s.drifted));
}
