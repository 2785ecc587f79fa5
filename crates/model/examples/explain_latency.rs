//! Latency percentiles of explaining one row at a time (issue 17's "≤ 100 µs p99 added per
//! row"), in process: the embedded basket model (or `RETAIL_BENCH_MODEL`) explains 20,000
//! distinct held-out baskets one after the other on one thread, each timed on its own, after
//! 2,000 unmeasured ones; criterion (`benches/engine.rs`) gives only the mean.
//!
//! ```sh
//! cargo run --release -p retail-model --example explain_latency
//! ```

use std::time::Instant;

use retail_model::artifact::Artifact;
use retail_model::data::parse_baskets;
use retail_model::progress::Silent;
use retail_model::synth::{GenConfig, generate};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let artifact = match std::env::var_os("RETAIL_BENCH_MODEL") {
        Some(path) => Artifact::load(path.as_ref())?,
        None => Artifact::embedded_default()?,
    };
    let explainer = artifact.explainer.as_ref().map_err(|e| e.to_string())?;
    let pipeline = artifact.pipeline().ok_or("not a basket model")?;
    let mut data = Vec::new();
    generate(GenConfig { baskets: 22_000, seed: 99 }, &mut data, None, &Silent)?;
    let baskets = parse_baskets(&data, &Silent)?;
    let rows: Vec<[f64; retail_model::features::N_FEATURES]> = (0..baskets.len())
        .map(|i| pipeline.encode(&baskets.record(i)).map(|e| e.features))
        .collect::<Result<_, _>>()?;
    let (warm, timed) = rows.split_at(2_000.min(rows.len()));
    for row in warm {
        std::hint::black_box(explainer.explain(row));
    }
    let mut micros: Vec<f64> = timed
        .iter()
        .map(|row| {
            let start = Instant::now();
            std::hint::black_box(explainer.explain(row));
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "{} rows explained one at a time: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        micros.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    Ok(())
}
