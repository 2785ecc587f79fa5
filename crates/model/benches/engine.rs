//! Inference speed of the native engine: one row (the seed basket, with and without the feature
//! pipeline) and batches of real held-out baskets on all cores; and the cost of explaining them
//! (exact TreeSHAP, issue 17): one row, and a batch on all cores.
//! Model: `RETAIL_BENCH_MODEL` (artifact dir) or the embedded default.

#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use retail_model::artifact::Artifact;
use retail_model::data::parse_baskets;
use retail_model::features::{BasketRecord, N_FEATURES};
use retail_model::progress::Silent;
use retail_model::synth::{GenConfig, generate};

fn model() -> Artifact {
    match std::env::var_os("RETAIL_BENCH_MODEL") {
        Some(path) => Artifact::load(path.as_ref()).expect("RETAIL_BENCH_MODEL loads"),
        None => Artifact::embedded_default().expect("embedded default model"),
    }
}

/// Feature rows of `n` baskets drawn with a seed the default model was not trained on.
fn rows(artifact: &Artifact, n: u64) -> Vec<f64> {
    let mut data = Vec::new();
    generate(GenConfig { baskets: n, seed: 99 }, &mut data, None, &Silent).expect("generate");
    let baskets = parse_baskets(&data, &Silent).expect("parse");
    (0..baskets.len())
        .flat_map(|i| artifact.pipeline().expect("a basket model").encode(&baskets.record(i)).expect("valid").features)
        .collect()
}

fn bench(c: &mut Criterion) {
    let artifact = model();
    let engine = &artifact.engine;
    eprintln!("model {}: {} trees, depth {}", artifact.manifest.version, engine.n_trees(), engine.depth());
    let seed = BasketRecord {
        spend: 125.50,
        quantity: 3.0,
        prod_code_20: "FOOD",
        prod_code_30: "FRESH",
        basket_size: "M",
        basket_type: "MIXED",
        store_region: "LONDON",
        store_format: "LS",
    };
    let encoded = artifact.pipeline().expect("a basket model").encode(&seed).expect("seed record is valid");
    let mut p = [0.0; 3];
    c.bench_function("single_row/engine", |b| {
        b.iter(|| {
            engine.predict_proba(black_box(&encoded.features), &mut p);
            black_box(p)
        })
    });
    c.bench_function("single_row/pipeline+engine", |b| {
        b.iter(|| {
            let e = artifact.pipeline().expect("a basket model").encode(black_box(&seed)).expect("valid");
            engine.predict_proba(&e.features, &mut p);
            black_box(p)
        })
    });
    let rows = rows(&artifact, 100_000);
    let n = rows.len() / N_FEATURES;
    let mut out = vec![0.0; n * 3];
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(n as u64));
    group.sample_size(20);
    group.bench_with_input(BenchmarkId::new("one_thread", n), &rows, |b, rows| {
        b.iter(|| engine.predict_batch(black_box(rows), &mut out))
    });
    group.bench_with_input(BenchmarkId::new("all_threads", n), &rows, |b, rows| {
        b.iter(|| engine.predict_batch_parallel(black_box(rows), &mut out))
    });
    group.finish();
    explain(c, &artifact, &encoded.features, &rows);
}

/// TreeSHAP of the seed row, and of 10,000 held-out rows on all cores.
fn explain(c: &mut Criterion, artifact: &Artifact, seed: &[f64], rows: &[f64]) {
    let explainer = artifact.explainer.as_ref().expect("the model ships explain.json");
    c.bench_function("explain/single_row", |b| b.iter(|| black_box(explainer.explain(black_box(seed)))));
    let rows = &rows[..10_000 * N_FEATURES];
    let mut group = c.benchmark_group("explain_batch");
    group.throughput(Throughput::Elements(10_000));
    group.sample_size(10);
    group.bench_function("all_threads/10000", |b| b.iter(|| black_box(explainer.explain_batch(black_box(rows)))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
